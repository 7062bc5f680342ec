"""Signal receivers, connected in CollectionsAppConfig.ready()."""

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from .models import Trait, forget_excluded
from .signals import collection_data_changed


@receiver(collection_data_changed, dispatch_uid="analytics_after_data_change")
def queue_analytics(sender, collection, **kwargs):
    """Recompute analytics on a worker once the change is committed."""
    from .analytics import refresh

    refresh.request(collection)


@receiver([post_save, post_delete], sender=Trait, dispatch_uid="trait_exclusions_changed")
def trait_changed(sender, **kwargs):
    """A trait row saved or deleted may change what is excluded: read it afresh."""
    forget_excluded()
