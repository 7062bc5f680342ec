"""Static files that ship inside installed Python packages rather than in our repository."""

from pathlib import Path

from django.contrib.staticfiles.finders import BaseFinder
from django.core.checks import Error
from django.core.files.storage import FileSystemStorage


class PlotlyJsFinder(BaseFinder):
    """plotly.js from the plotly package's own data, served as ``vendor/plotly.min.js``.

    The Python package and the browser library then always match, the machines stay offline
    (no CDN) and no 4.8 MB copy lives in git. collectstatic copies it like any static file.
    """

    prefix = "vendor"
    filename = "plotly.min.js"

    def __init__(self, *args, **kwargs):
        import plotly

        self.source_dir = Path(plotly.__file__).resolve().parent / "package_data"
        self.storage = FileSystemStorage(location=self.source_dir)
        self.storage.prefix = self.prefix

    def check(self, **kwargs):
        if not (self.source_dir / self.filename).is_file():
            return [
                Error(
                    f"plotly.js is missing from the plotly package ({self.source_dir})",
                    hint="Reinstall plotly (pip install -r requirements.txt).",
                    id="nftsite.E001",
                )
            ]
        return []

    def find(self, path, find_all=False, **kwargs):
        # Like Django's own finders: the path (or a list of it with find_all), else [].
        if path != f"{self.prefix}/{self.filename}":
            return []
        found = str(self.source_dir / self.filename)
        return [found] if find_all else found

    def list(self, ignore_patterns):
        yield self.filename, self.storage
