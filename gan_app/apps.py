from django.apps import AppConfig


class GanAppConfig(AppConfig):
    name = "gan_app"
    verbose_name = "Generators"
