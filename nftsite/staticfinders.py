"""Static files that come from pinned registry packages rather than from our repository.

`make run` and `make test` install them with ``npm ci`` (package.json + package-lock.json) into
node_modules/, which git ignores; this finder serves the few files pages load from there, under
``vendor/``. collectstatic copies them like any static file (hashed, compressed), so the machines
stay offline (no CDN) and no multi-megabyte copy lives in git.
"""

from pathlib import Path

from django.conf import settings
from django.contrib.staticfiles.finders import BaseFinder
from django.core.checks import Error
from django.core.files.storage import FileSystemStorage

# Served file name -> the npm package holding it. The cartesian bundle has the trace types the
# pages draw (bar, scatter, box) at a third of the full bundle's size.
VENDORED = {
    "plotly-cartesian.min.js": "plotly.js-cartesian-dist-min",
}


class NodeModulesFinder(BaseFinder):
    """Files of pinned npm packages, served as ``vendor/<name>``."""

    prefix = "vendor"

    def __init__(self, *args, **kwargs):
        self.source_dir = Path(settings.BASE_DIR) / "node_modules"
        self.storages = {}
        for name, package in VENDORED.items():
            storage = FileSystemStorage(location=self.source_dir / package)
            storage.prefix = self.prefix
            self.storages[name] = storage

    def check(self, **kwargs):
        missing = [name for name in VENDORED if not self._path(name).is_file()]
        if not missing:
            return []
        return [
            Error(
                f"{', '.join(missing)} missing from {self.source_dir}",
                hint="Install the pinned browser packages: make install (runs npm ci).",
                id="nftsite.E001",
            )
        ]

    def find(self, path, find_all=False, **kwargs):
        # Like Django's own finders: the path (or a list of it with find_all), else [].
        name = path.removeprefix(f"{self.prefix}/")
        if name == path or name not in VENDORED:
            return []
        found = str(self._path(name))
        return [found] if find_all else found

    def list(self, ignore_patterns):
        yield from self.storages.items()

    def _path(self, name):
        return self.source_dir / VENDORED[name] / name
