"""The site as an ASGI application: what the web server runs (gunicorn's asyncio worker).

Django runs each request's synchronous code in a thread of that request's own, so a
connection kept open after a request would never be used again. The web process therefore
borrows PostgreSQL connections from a pool (at most DATABASE_POOL_SIZE) and gives them back at
the end of each request (a long poll gives its back before it sleeps); SQLite connects per
request. DATABASE_CONN_MAX_AGE is for the workers.
"""

import os

import django
from django.conf import settings

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nftsite.settings")
django.setup(set_prefix=False)  # as django.core.asgi.get_asgi_application does

from nftsite.asgi_handler import ReusedThreadsASGIHandler  # noqa: E402 (after setup)

# Django's handler, with each request's thread used again by later requests (asgi_handler).
application = ReusedThreadsASGIHandler()
# Before the first connection is made (the settings are loaded by now: nftsite's celery app
# reads them on import); the pool opens on first use, in the worker process.
for database in settings.DATABASES.values():
    database["CONN_MAX_AGE"] = 0
    if database["ENGINE"] == "django.db.backends.postgresql":
        database.setdefault("OPTIONS", {})["pool"] = {
            "min_size": 1,
            "max_size": settings.DATABASE_POOL_SIZE,
            # Seconds a request waits for a free connection before it fails (503). It also
            # delays the 503 a visitor sees while the database is down: the pool waits this
            # long where a direct connection fails at once.
            "timeout": 5,
        }
