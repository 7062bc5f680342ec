"""Public pages of a fabricated collection: the comparison with its source, the export zip."""

from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, render

from collections_app.models import Collection

from ..models import FabricationJob
from . import compare


def _fabricated(slug) -> Collection:
    return get_object_or_404(
        Collection.objects.select_related("source_collection", "fabrication__generator"),
        slug=slug,
        is_public=True,
        source=Collection.Source.FABRICATED,
    )


def compare_source(request, slug):
    collection = _fabricated(slug)
    job = getattr(collection, "fabrication", None)
    context = {"collection": collection, "job": job, **compare.side_by_side(collection)}
    return render(request, "gan/fabrication_compare.html", context)


def export_zip(request, slug):
    collection = _fabricated(slug)
    job = FabricationJob.objects.filter(collection=collection).exclude(export_file="").first()
    if job is None:
        raise Http404("this collection has no export")
    return FileResponse(
        job.export_file.open("rb"),
        as_attachment=True,
        filename=job.export_file.name.rsplit("/", 1)[-1],
        content_type="application/zip",
    )
