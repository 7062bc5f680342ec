from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path
from django.views.static import serve

from . import views

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    # Browsers ask for /favicon.ico on pages that name no icon (the admin's).
    path("favicon.ico", views.favicon),
    path("admin/", admin.site.urls),
    path("", include("gan_app.urls")),
    path("", include("collections_app.urls")),
]

if not settings.AWS_STORAGE_BUCKET_NAME:
    # Local file storage (one machine, `make run`): Django serves media itself. With S3 the
    # storage hands out its own URLs and this route is absent.
    urlpatterns += [
        re_path(r"^media/(?P<path>.*)$", serve, {"document_root": settings.MEDIA_ROOT}),
    ]

handler500 = "nftsite.errors.server_error"
