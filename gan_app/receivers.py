"""Signal receivers, connected in GanAppConfig.ready()."""

from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from collections_app.models import Collection

from .generation.requests import forget_served_generators
from .models import GeneratedImage, Generator


@receiver(post_delete, sender=GeneratedImage, dispatch_uid="generated_image_file_cleanup")
def delete_generated_file(sender, instance, **kwargs):
    """A deleted image (moderation, or its generator deleted) takes its stored file along,
    once the deletion is committed; the seed can then be generated again."""
    if instance.image:
        storage, name = instance.image.storage, instance.image.name
        transaction.on_commit(lambda: storage.delete(name))


@receiver([post_save, post_delete], sender=Generator, dispatch_uid="generator_served_changed")
@receiver([post_save, post_delete], sender=Collection, dispatch_uid="collection_served_changed")
def served_generator_changed(sender, **kwargs):
    """A generator or its collection changed: Generate reads it afresh in this process."""
    forget_served_generators()
