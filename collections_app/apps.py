from django.apps import AppConfig


class CollectionsAppConfig(AppConfig):
    name = "collections_app"
    verbose_name = "Collections"

    def ready(self):
        from . import receivers  # noqa: F401  (connects the signal receivers)
