"""Signal receivers, connected in CollectionsAppConfig.ready()."""

from django.dispatch import receiver

from .signals import collection_data_changed


@receiver(collection_data_changed, dispatch_uid="analytics_after_data_change")
def queue_analytics(sender, collection, **kwargs):
    """Recompute analytics on a worker once the change is committed."""
    from .analytics import refresh

    refresh.request(collection)
