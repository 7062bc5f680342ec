"""Django's ASGI handler with each request's synchronous code on a thread used again.

Django wraps every request in a ``ThreadSensitiveContext`` of its own, so the request's
synchronous code (middleware hooks, views, the ORM) runs on one thread. asgiref makes that
thread for the request and, at its end, starts a second thread to join it. The first thread
also builds, on first use, what the libraries keep per thread: Django's database wrapper,
Celery's result backend and reply id. Under load that was about a tenth of the web process's
CPU on the Generate path (two threads made and two joined per HTTP request).

Here a request borrows an idle one-thread executor (one is made when none is idle) and gives
it back at its end. A request still has a thread of its own while it runs, and its code runs on
one thread from first hook to last, as before: only threads are not made and joined each
time. At most ``IDLE_KEPT`` idle executors are kept; a burst's extra ones are shut down.

Thread-local state outlives a request on its thread, as it does on a WSGI server's threads:
Django ends each request by closing its database connections (CONN_MAX_AGE is 0 in the web
process; the pool takes the connection back).
"""

from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import ThreadSensitiveContext
from django.core.handlers.asgi import ASGIHandler

IDLE_KEPT = 32


class ReusedThreadsASGIHandler(ASGIHandler):
    def __init__(self):
        super().__init__()
        # Only the event loop's thread touches it (one loop per web process).
        self.idle: list[ThreadPoolExecutor] = []

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await super().__call__(scope, receive, send)  # Django's own refusal
        executor = self.idle.pop() if self.idle else self.new_executor()
        try:
            async with ThreadSensitiveContext(executor=executor):
                await self.handle(scope, receive, send)
        finally:
            self.give_back(executor)

    @staticmethod
    def new_executor() -> ThreadPoolExecutor:
        return ThreadPoolExecutor(max_workers=1, thread_name_prefix="request")

    def give_back(self, executor: ThreadPoolExecutor) -> None:
        """Keep it for the next request, or let its thread end (not waiting: a call the
        request left running, e.g. after the client went away, finishes on its own)."""
        if len(self.idle) < IDLE_KEPT:
            self.idle.append(executor)
        else:
            executor.shutdown(wait=False)
