from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path
from django.views.static import serve

from gan_app import admin_evaluation

from . import views

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    # Browsers ask for /favicon.ico on pages that name no icon (the admin's).
    path("favicon.ico", views.favicon),
    # --- Evaluation pages of a training run, before the admin's own catch-all ---
    path(
        "admin/gan_app/trainingrun/<int:pk>/evaluation/",
        admin.site.admin_view(admin_evaluation.run_evaluation),
        name="gan_run_evaluation",
    ),
    path(
        "admin/gan_app/trainingrun/<int:pk>/evaluation/evaluate/",
        admin.site.admin_view(admin_evaluation.evaluate_all),
        name="gan_run_evaluate_all",
    ),
    path(
        "admin/gan_app/trainingrun/<int:pk>/evaluation/publish/<int:checkpoint_pk>/",
        admin.site.admin_view(admin_evaluation.publish_epoch),
        name="gan_run_publish_epoch",
    ),
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
