from django.http import JsonResponse
from django.shortcuts import redirect
from django.templatetags.static import static

from .health import run_checks


def healthz(request):
    status, body = run_checks(web_only=request.GET.get("scope") == "web")
    response = JsonResponse(body, status=status)
    response["Cache-Control"] = "no-store"
    return response


def favicon(request):
    # Resolved per request: the hashed static name exists only once collectstatic has run.
    return redirect(static("img/favicon.svg"), permanent=True)
