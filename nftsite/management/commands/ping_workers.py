"""Send a probe through each queue and report which workers answer, and how fast."""

import time

from django.core.management.base import BaseCommand, CommandError

from nftsite.models import QueueProbe
from nftsite.tasks import QUEUES, send_probes


class Command(BaseCommand):
    help = "Check that every Celery queue is consumed: send a probe to each and wait for answers."

    def add_arguments(self, parser):
        parser.add_argument("--queue", action="append", choices=QUEUES, help="Default: all.")
        parser.add_argument("--timeout", type=float, default=20.0, help="Seconds to wait.")

    def handle(self, *args, queue, timeout, **options):
        try:
            probes = send_probes(queue or QUEUES)
        except Exception as exc:
            raise CommandError(f"could not reach the broker: {exc}") from None
        deadline = time.monotonic() + timeout
        pending = {p.pk for p in probes}
        while pending and time.monotonic() < deadline:
            pending &= set(
                QueueProbe.objects.filter(pk__in=pending, answered_at=None).values_list(
                    "pk", flat=True
                )
            )
            time.sleep(0.1)
        for probe in QueueProbe.objects.filter(pk__in=[p.pk for p in probes]).order_by("queue"):
            if probe.answered_at:
                self.stdout.write(
                    f"{probe.queue:<9} ok   {probe.round_trip_ms:7.1f} ms  {probe.answered_by}"
                )
            else:
                self.stdout.write(f"{probe.queue:<9} NO ANSWER within {timeout:g} s")
        if pending:
            raise CommandError(f"{len(pending)} queue(s) without a worker answering")
