from django.apps import AppConfig


class GanAppConfig(AppConfig):
    name = "gan_app"
    verbose_name = "Generators"

    def ready(self):
        from collections_app import hooks

        from . import (
            receivers,  # noqa: F401  (generated images' file clean-up)
            showcase,
        )

        # The catalog's home page shows generators without importing gan_app.
        if showcase.home_context not in hooks.HOME_PAGE:
            hooks.HOME_PAGE.append(showcase.home_context)
