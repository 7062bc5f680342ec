"""The private storage: checkpoints, generator artifacts, trait classifiers, near-copy indexes
and uploaded archives. Public media (token and generated images) is served to anyone from
predictable paths; these files must not be, so they live apart: a folder no URL serves on one
machine, a private prefix (signed, expiring URLs) in S3. Staff reach local ones through
``private_file`` (nftsite.views)."""

from functools import cached_property

from django.conf import settings
from django.core.files.storage import FileSystemStorage, storages
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.functional import LazyObject, empty


class PrivateStorage(LazyObject):
    """The "private" alias of STORAGES, looked up when first used (as ``default_storage`` is):
    a FileField calls its storage callable once, at import, before settings may change."""

    def _setup(self):
        self._wrapped = storages["private"]


private = PrivateStorage()


@receiver(setting_changed)
def _forget_private_storage(setting, **kwargs):
    if setting == "STORAGES":
        private._wrapped = empty


def private_storage():
    """FileFields take this callable (``storage=``), so migrations name it, not a backend."""
    return private


class PrivateFileSystemStorage(FileSystemStorage):
    """Files under ``PRIVATE_MEDIA_ROOT`` (read when used, so tests can move it)."""

    @cached_property
    def base_location(self):
        return self._value_or_setting(self._location, settings.PRIVATE_MEDIA_ROOT)

    def _clear_cached_properties(self, setting, **kwargs):
        super()._clear_cached_properties(setting, **kwargs)
        if setting == "PRIVATE_MEDIA_ROOT":
            self.__dict__.pop("base_location", None)
            self.__dict__.pop("location", None)
