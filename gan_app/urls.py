from functools import wraps

from django.http import HttpResponsePermanentRedirect
from django.urls import path, register_converter, reverse

from . import views
from .fabrication import views as fabrication_views


class SeedConverter:
    """A seed in a URL: digits only, at most 16 of them (seeds stop at 2^53 - 1)."""

    regex = "[0-9]{1,16}"

    def to_python(self, value):
        return int(value)

    def to_url(self, value):
        return str(int(value))


register_converter(SeedConverter, "seed")


def canonical_seeds(view):
    """One spelling per permalink: ``/g/x/0042.png`` redirects (301) to ``/g/x/42.png``."""

    @wraps(view)
    def wrapper(request, **kwargs):
        match = request.resolver_match
        canonical = reverse(f"{match.namespace}:{match.url_name}", kwargs=kwargs)
        if canonical != request.path:
            query = request.META.get("QUERY_STRING", "")
            return HttpResponsePermanentRedirect(canonical + (f"?{query}" if query else ""))
        return view(request, **kwargs)

    return wrapper


app_name = "gan"

urlpatterns = [
    path("generate/", views.generate, name="generate"),
    path("generate/r/<uuid:public_id>/", views.request_page, name="request"),
    path("generate/r/<uuid:public_id>.json", views.request_status, name="request_status"),
    path("generate/r/<uuid:public_id>.zip", views.request_zip, name="request_zip"),
    path("gen/<slug:slug>/", views.generator_page, name="generator"),
    path("g/<slug:slug>/<seed:seed>.png", canonical_seeds(views.image_png), name="image_png"),
    path("g/<slug:slug>/<seed:seed>.json", canonical_seeds(views.image_json), name="image_json"),
    path("g/<slug:slug>/<seed:seed>/", canonical_seeds(views.image_page), name="image"),
    # A POST: no redirect to a canonical seed (it would drop the form).
    path("g/<slug:slug>/<seed:seed>/report/", views.report_image, name="report_image"),
    path(
        "g/<slug:slug>/walk/<seed:start>-<seed:end>-<int:steps>.png",
        canonical_seeds(views.walk_png),
        name="walk_png",
    ),
    path("gallery/", views.gallery, name="gallery"),
    # Evaluation: a collection's generators side by side.
    path("c/<slug:slug>/generators/", views.compare_generators, name="compare_generators"),
    path(
        "c/<slug:slug>/compare-source/",
        fabrication_views.compare_source,
        name="fabrication_compare",
    ),
    path("c/<slug:slug>/fabrication.zip", fabrication_views.export_zip, name="fabrication_zip"),
]
