from django.apps import AppConfig


class NftsiteConfig(AppConfig):
    name = "nftsite"
    verbose_name = "Operations"
