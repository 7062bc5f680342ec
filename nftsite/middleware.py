"""WhiteNoise's static files without making the request stack synchronous under ASGI.

WhiteNoise's middleware is synchronous only, and one synchronous middleware makes Django run
every request through a thread from start to end, a long poll's whole wait included. This
subclass is async-capable: a static file is read in a thread and sent by the event loop, and
every other request goes straight on down the async stack. Under WSGI it is WhiteNoise as is.
"""

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.conf import settings
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
