"""Signals other parts of the product listen to."""

from django.dispatch import Signal

# Sent (with ``collection=``) after an ingest, import or demo build has committed changes to a
# collection's tokens, traits or sales. Analytics listens and recomputes on a worker.
collection_data_changed = Signal()
