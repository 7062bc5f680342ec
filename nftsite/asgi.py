"""The site as an ASGI application: what the web server runs (gunicorn's asyncio worker).

Django runs each request's synchronous code in a thread of that request's own, so a
connection kept open after a request would never be used again: the web process closes its
database connections at the end of each request (a long poll closes its own before it
sleeps), whatever DATABASE_CONN_MAX_AGE says for the workers.
"""

import os

from django.conf import settings
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nftsite.settings")
application = get_asgi_application()
# Before the first connection is made (the settings are loaded by now: nftsite's celery app
# reads them on import).
for database in settings.DATABASES.values():
    database["CONN_MAX_AGE"] = 0
