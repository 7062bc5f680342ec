from django.apps import AppConfig


class GanAppConfig(AppConfig):
    name = "gan_app"
    verbose_name = "Generators"

    def ready(self):
        from collections_app import hooks

        from . import (
            publishing,
            receivers,  # noqa: F401  (generated images' file clean-up)
            showcase,
        )
        from .evaluation import profile
        from .training import chunks

        # Lower layers call up through hooks instead of importing: the catalog's home page
        # shows generators, analytics store what the images are (pixel art), and a finished
        # auto_publish run is published.
        if showcase.home_context not in hooks.HOME_PAGE:
            hooks.HOME_PAGE.append(showcase.home_context)
        if profile.collection_profile not in hooks.IMAGE_PROFILE:
            hooks.IMAGE_PROFILE.append(profile.collection_profile)
        if publishing.auto_publish not in chunks.AUTO_PUBLISH:
            chunks.AUTO_PUBLISH.append(publishing.auto_publish)
