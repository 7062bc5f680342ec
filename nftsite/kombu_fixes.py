"""A small patch to kombu 5.7's Redis transport: a broker restart must not kill a worker.

The defect: when Redis restarts, the worker's consumer collects its connection. Restoring the
first channel's unacknowledged messages fails (Redis is down), so the other channels are left
open, and the transport is detached (``transport.client = None``). Closing such a channel
later (the worker's shutdown and restart steps do) restores its unacked messages through a
new connection pool, built from ``transport.client.hostname``: ``AttributeError: 'NoneType'
object has no attribute 'hostname'``, which Celery's ``ignore_errors`` does not catch, and the
worker stops ("Unrecoverable error"). No setting avoids it (tests/platform/test_broker_restart).

The fix: with no transport to reach Redis, skip the restore. Nothing is lost: the Redis
transport keeps every delivered message in its ``unacked`` hash on the server until acked,
and ``restore_visible`` (run by every worker) puts it back on its queue once the visibility
timeout has passed. Applied to kombu 5.7.x only, so an upgrade makes us look again.
"""

import logging

import kombu
from kombu.transport import redis as redis_transport

logger = logging.getLogger(__name__)
PATCHED_SERIES = "5.7."


def _detached(qos):
    transport = qos.channel.connection
    return transport is None or transport.client is None


def _restore_unacked(self, client=None, _original=redis_transport.QoS.restore_unacked):
    if client is None and _detached(self):
        count = len(self._delivered)
        if count:
            logger.warning(
                "broker connection already closed: %d unacked message(s) stay in Redis and "
                "return to their queue after the visibility timeout",
                count,
            )
        self._delivered.clear()
        return None
    return _original(self, client)


def apply():
    """Install the patch once; a no-op on other kombu versions."""
    if not kombu.__version__.startswith(PATCHED_SERIES):
        return False
    if getattr(redis_transport.QoS.restore_unacked, "nff_patched", False):
        return True
    _restore_unacked.nff_patched = True
    redis_transport.QoS.restore_unacked = _restore_unacked
    return True
