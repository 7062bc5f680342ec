from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class NftsiteConfig(AppConfig):
    default = True
    name = "nftsite"
    verbose_name = "Operations"


class SiteAdminConfig(admin_apps.AdminConfig):
    default = False
    default_site = "nftsite.admin_site.SiteAdmin"
