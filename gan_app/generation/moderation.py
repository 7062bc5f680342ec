"""Visitors' reports on public images: each one queued for a moderator in the admin, limited
per client (``REPORT_RATE_LIMIT``, counted over the reports themselves, like generate requests)."""

from django.conf import settings
from django.db import transaction

from ..models import GeneratedImage, ImageReport
from . import ratelimit

MAX_REASON = 1000


def report_image(image: GeneratedImage, reason: str, client_key: str) -> ImageReport:
    """Queue ``image`` for moderation; RateLimited when the client reported too often."""
    rate = ratelimit.Rate.parse(settings.REPORT_RATE_LIMIT)
    with transaction.atomic():
        ratelimit.lock_client(client_key)
        ratelimit.check_rows(ImageReport.objects, client_key, rate)
        return ImageReport.objects.create(
            image=image, reason=(reason or "").strip()[:MAX_REASON], client_key=client_key
        )


def hide(reports) -> int:
    """Hide the reported images (gone for everyone) and close their reports."""
    images = GeneratedImage.objects.filter(reports__in=reports).distinct()
    count = GeneratedImage.objects.filter(pk__in=images.values("pk")).update(is_hidden=True)
    ImageReport.objects.filter(image__in=images.values("pk")).update(
        status=ImageReport.Status.HIDDEN
    )
    return count


def dismiss(reports) -> int:
    return reports.update(status=ImageReport.Status.DISMISSED)
