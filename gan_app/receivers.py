"""Signal receivers, connected in GanAppConfig.ready()."""

from django.db import transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver

from .models import GeneratedImage


@receiver(post_delete, sender=GeneratedImage, dispatch_uid="generated_image_file_cleanup")
def delete_generated_file(sender, instance, **kwargs):
    """A deleted image (moderation, or its generator deleted) takes its stored file along,
    once the deletion is committed; the seed can then be generated again."""
    if instance.image:
        storage, name = instance.image.storage, instance.image.name
        transaction.on_commit(lambda: storage.delete(name))
