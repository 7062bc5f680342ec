"""The middleware stack, made cheap under ASGI.

``StaticFilesMiddleware``: WhiteNoise's middleware is synchronous only, and one synchronous
middleware makes Django run every request through a thread from start to end, a long poll's
whole wait included. This subclass is async-capable: a static file is read in a thread and sent
by the event loop, and every other request goes straight on down the async stack. Under WSGI it
is WhiteNoise as is.

``CommonMiddleware``, ``AuthenticationMiddleware``, ``MessageMiddleware``, ``CSPMiddleware``:
Django's (and django-csp's) own, with their hooks run on the event loop (``EventLoopHooks``).
Django's ``MiddlewareMixin`` sends every ``process_request`` and ``process_response`` to a
thread under ASGI in case it does I/O: about 0.2 ms of a 2-core web server's CPU per hand-off,
and a request made about fifteen. These hooks only read the request and set headers; storing
messages, which may read the session, still goes to the thread, and Django refuses any other
database access from the event loop (``SynchronousOnlyOperation``) rather than let it block.
Under WSGI nothing changes. (The security, session, CSRF and clickjacking middlewares stay as
Django ships them: ``check --deploy`` looks for them by their dotted paths.)
"""

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from csp.middleware import CSPMiddleware as _CSP
from django.conf import settings
from django.contrib.auth.middleware import AuthenticationMiddleware as _Authentication
from django.contrib.messages.middleware import MessageMiddleware as _Messages
from django.middleware.common import CommonMiddleware as _Common
from whitenoise.middleware import WhiteNoiseMiddleware


class StaticFilesMiddleware(WhiteNoiseMiddleware):
    sync_capable = True
    async_capable = True

    def __init__(self, get_response=None, settings=settings):
        super().__init__(get_response, settings)
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)

    def __call__(self, request):
        if self.async_mode:
            return self.__acall__(request)
        return super().__call__(request)

    async def __acall__(self, request):
        if self.autorefresh:  # DEBUG: looks on disk
            static_file = await sync_to_async(self.find_file)(request.path_info)
        else:
            static_file = self.files.get(request.path_info)
        if static_file is None:
            return await self.get_response(request)
        return await sync_to_async(self.serve_read)(static_file, request)

    @classmethod
    def serve_read(cls, static_file, request):
        """``serve()`` with the file read here: the event loop must not read files, and Django
        warns about (and then reads at once) a file response's synchronous iterator."""
        response = cls.serve(static_file, request)
        body = b"".join(response.streaming_content)
        if response.file_to_stream is not None:
            response.file_to_stream.close()
        response.streaming_content = _once(body)
        return response


async def _once(body: bytes):
    yield body


class EventLoopHooks:
    """Mixed into a ``MiddlewareMixin`` middleware whose hooks do no I/O: under ASGI its
    ``process_request`` and ``process_response`` run on the event loop, unless
    ``response_needs_thread`` says that this time the response hook may do I/O."""

    def response_needs_thread(self, request, response) -> bool:
        return False

    async def __acall__(self, request):
        response = None
        if hasattr(self, "process_request"):
            response = self.process_request(request)
        response = response or await self.get_response(request)
        if hasattr(self, "process_response"):
            if self.response_needs_thread(request, response):
                response = await sync_to_async(self.process_response)(request, response)
            else:
                response = self.process_response(request, response)
        return response


class CommonMiddleware(EventLoopHooks, _Common):
    pass


class AuthenticationMiddleware(EventLoopHooks, _Authentication):
    pass  # sets a lazy ``request.user``: the user is read when a view asks


class MessageMiddleware(EventLoopHooks, _Messages):
    def response_needs_thread(self, request, response):
        # Storing messages may read the session's; with none added or shown there is no work.
        storage = getattr(request, "_messages", None)
        return storage is not None and (storage.used or storage.added_new)


class CSPMiddleware(EventLoopHooks, _CSP):
    pass
