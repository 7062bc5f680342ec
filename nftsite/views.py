from django.http import JsonResponse

from .health import run_checks


def healthz(request):
    status, body = run_checks()
    response = JsonResponse(body, status=status)
    response["Cache-Control"] = "no-store"
    return response
