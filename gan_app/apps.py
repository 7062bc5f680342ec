from django.apps import AppConfig


class GanAppConfig(AppConfig):
    name = "gan_app"
    verbose_name = "Generators"

    def ready(self):
        from . import receivers  # noqa: F401  (generated images' file clean-up)
