import mimetypes

from django.contrib.admin.views.decorators import staff_member_required
from django.http import FileResponse, Http404, JsonResponse
from django.shortcuts import redirect
from django.templatetags.static import static

from .health import run_checks
from .storage import private_storage


def healthz(request):
    status, body = run_checks(web_only=request.GET.get("scope") == "web")
    response = JsonResponse(body, status=status)
    response["Cache-Control"] = "no-store"
    return response


def favicon(request):
    # Resolved per request: the hashed static name exists only once collectstatic has run.
    return redirect(static("img/favicon.svg"), permanent=True)


@staff_member_required
def private_file(request, path):
    """A file of the private storage, to staff only (what the admin's file links point at)."""
    storage = private_storage()
    if ".." in path.split("/") or not storage.exists(path):
        raise Http404("No such file.")
    content_type = mimetypes.guess_type(path)[0] or "application/octet-stream"
    return FileResponse(
        storage.open(path, "rb"),
        as_attachment=True,
        filename=path.rsplit("/", 1)[-1],
        content_type=content_type,
    )
