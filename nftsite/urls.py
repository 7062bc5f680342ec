from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path
from django.views.static import serve

from . import views

# Checkpoints, generators, uploads (nftsite/storage.py): to staff only, never under MEDIA_URL.
PRIVATE_FILES = settings.PRIVATE_MEDIA_URL.strip("/") + "/<path:path>"

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    # Browsers ask for /favicon.ico on pages that name no icon (the admin's).
    path("favicon.ico", views.favicon),
    path("admin/", admin.site.urls),
    path(
        f"{settings.PRIVATE_MEDIA_URL.strip('/')}/<path:path>",
        views.private_file,
        name="private_file",
    ),
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
