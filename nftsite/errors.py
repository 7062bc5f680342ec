"""Error pages. A database outage answers 503 with a retry hint instead of a traceback."""

import sys

from django.db import InterfaceError, OperationalError
from django.template.response import SimpleTemplateResponse

# Connection-level failures only: a bad query is a bug (500), not an outage (503).
DATABASE_OUTAGE = (OperationalError, InterfaceError)


def server_error(request):
    # SimpleTemplateResponse: no context processors, so nothing here touches the database.
    if isinstance(sys.exc_info()[1], DATABASE_OUTAGE):
        response = SimpleTemplateResponse("503.html", status=503)
        response["Retry-After"] = "30"
    else:
        response = SimpleTemplateResponse("500.html", status=500)
    return response.render()
