"""Training runs and their checkpoints, published generators, generation requests and images."""

import uuid
from urllib.parse import urlencode

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone

from collections_app.models import Collection, TrainingSet
from nftsite.jobs import Job
from nftsite.storage import private_storage


class TrainingRun(Job):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        PAUSED = "paused", "Paused"
        SUCCEEDED = "succeeded", "Finished"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    class Control(models.TextChoices):
        """What an admin asked for; the running chunk honours it at the next epoch boundary."""

        NONE = "", "None"
        PAUSE = "pause", "Pause"
        CANCEL = "cancel", "Cancel"

    ACTIVE = (Status.QUEUED, Status.RUNNING)
    # The job kernel (nftsite.jobs): a chunk task per lease; the run's error is its message.
    task_name = "gan_app.tasks.train_chunk"
    lease_kind = "training"
    message_field = "error"

    training_set = models.ForeignKey(
        TrainingSet, on_delete=models.PROTECT, related_name="training_runs"
    )
    name = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED)
    control = models.CharField(max_length=8, choices=Control.choices, default="", blank=True)
    conditional = models.BooleanField(default=False, help_text="Trait-conditioned generator.")
    config = models.JSONField(default=dict, blank=True, help_text="Hyperparameters, as used.")
    resolution = models.PositiveSmallIntegerField(default=64)
    seed = models.BigIntegerField(default=0)
    epochs_total = models.PositiveIntegerField(default=100)
    epoch_done = models.PositiveIntegerField(default=0)
    images_per_second = models.FloatField(null=True, blank=True)
    eta_seconds = models.FloatField(null=True, blank=True)
    loss_history = models.JSONField(
        default=list, blank=True, help_text="Per epoch: g_loss, d_loss, d_real, d_fake, seconds."
    )
    error = models.TextField(blank=True)
    chunks_run = models.PositiveIntegerField(default=0)
    queue = models.CharField(
        max_length=64, blank=True, help_text="The queue its chunks run on (e.g. a GPU pool)."
    )
    # --- Training pipeline (gan_app.training) ---
    auto_publish = models.BooleanField(
        default=False, help_text="Publish the final epoch's generator when the run finishes."
    )
    # Private: a run's grids show what an unpublished (maybe withheld) generator draws.
    sample_grid = models.FileField(
        upload_to="grids/live/",
        storage=private_storage,
        blank=True,
        max_length=300,
        help_text="The latest sample grid.",
    )

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "created_at"], name="run_status_created")]

    def __str__(self):
        return self.name or f"Run #{self.pk} on {self.training_set}"

    @property
    def collection(self):
        return self.training_set.collection

    @property
    def percent(self):
        return 100.0 * self.epoch_done / self.epochs_total if self.epochs_total else 0.0

    def task_queue(self):
        return self.queue or None

    def cancel(self):
        """A chunk training now stops at its next epoch boundary (it reads ``control``); a run
        nobody trains ends now, through the kernel."""
        live = self.status == self.Status.RUNNING and not self.is_stale()
        if live:
            rows = TrainingRun.objects.filter(pk=self.pk, status=self.Status.RUNNING)
            return rows.update(control=self.Control.CANCEL) == 1
        return super().cancel()

    def latest_checkpoint(self):
        return self.checkpoints.order_by("-epoch").first()


class Checkpoint(models.Model):
    """Both networks and both optimizers at an epoch, plus the fixed-seed sample grid."""

    run = models.ForeignKey(TrainingRun, on_delete=models.CASCADE, related_name="checkpoints")
    epoch = models.PositiveIntegerField()
    state_file = models.FileField(upload_to="checkpoints/", storage=private_storage, max_length=300)
    grid = models.FileField(upload_to="grids/", storage=private_storage, blank=True, max_length=300)
    losses = models.JSONField(default=dict, blank=True, help_text="Losses of this epoch.")
    metrics = models.JSONField(default=dict, blank=True, help_text="Evaluation results.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["run", "epoch"]
        constraints = [
            models.UniqueConstraint(fields=["run", "epoch"], name="checkpoint_unique_epoch")
        ]

    def __str__(self):
        return f"{self.run} @ epoch {self.epoch}"


class Generator(models.Model):
    """A published (or publishable) generator: a saved Keras generator model + its manifest."""

    slug = models.SlugField(
        max_length=200, unique=True, help_text="Encodes collection and version, e.g. punks-v3."
    )
    name = models.CharField(max_length=300)
    description = models.TextField(blank=True)
    collection = models.ForeignKey(Collection, on_delete=models.CASCADE, related_name="generators")
    training_run = models.ForeignKey(
        TrainingRun, on_delete=models.SET_NULL, null=True, blank=True, related_name="generators"
    )
    checkpoint = models.ForeignKey(
        Checkpoint, on_delete=models.SET_NULL, null=True, blank=True, related_name="generators"
    )
    epoch = models.PositiveIntegerField(null=True, blank=True)
    version = models.PositiveIntegerField(default=1)
    resolution = models.PositiveSmallIntegerField()
    latent_dim = models.PositiveSmallIntegerField()
    conditional = models.BooleanField(default=False)
    model_file = models.FileField(upload_to="generators/", storage=private_storage, max_length=300)
    model_sha256 = models.CharField(max_length=64, blank=True)
    manifest = models.JSONField(default=dict, blank=True)
    sample_grid = models.FileField(upload_to="generators/", blank=True, max_length=300)
    metrics = models.JSONField(default=dict, blank=True)
    is_published = models.BooleanField(default=False)
    published_at = models.DateTimeField(null=True, blank=True)
    # --- The quality gate (gan_app.evaluation.gate): published but unlisted until it passes ---
    is_listed = models.BooleanField(
        default=False, help_text="Shown to the public (published and past the quality gate)."
    )
    gate_verdict = models.JSONField(
        default=dict, blank=True, help_text="The gate's checks: name, value, threshold, passed."
    )
    listed_reason = models.TextField(blank=True, help_text="Why an admin listed it anyway.")
    listed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    listed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["collection", "-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["collection", "version"], name="generator_unique_version"
            )
        ]
        indexes = [models.Index(fields=["is_published", "collection"], name="gen_published")]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("gan:generator", args=[self.slug])

    # What Generate, its render, the permalinks and the image lists never read, so their
    # queries leave it out: the evaluation report and gate verdict, and the collection's
    # analytics cache (tens of KB of JSON, hundreds on a large collection) and image profile.
    UNSERVED = ("metrics", "gate_verdict", "collection__analytics", "collection__image_profile")

    @classmethod
    def served(cls, queryset, via: str = "", keep=()):
        """``queryset`` with the generator (reached through the relation ``via``, e.g.
        "generator"; none: ``queryset`` is of generators) and its collection joined, less the
        ``UNSERVED`` columns other than ``keep``."""
        prefix = f"{via}__" if via else ""
        unserved = [prefix + name for name in cls.UNSERVED if name not in keep]
        return queryset.select_related(f"{prefix}collection").defer(*unserved)

    @property
    def is_public(self) -> bool:
        """What visitors may see and use: published and listed."""
        return self.is_published and self.is_listed

    def visible_to(self, user) -> bool:
        """Public, or published-but-unlisted for staff to preview."""
        return self.is_public or bool(self.is_published and user and user.is_staff)

    def publish(self):
        """Published; listed at once only while the quality gate is off (otherwise the
        evaluation that publishing queues lists it when it passes)."""
        self.is_published = True
        self.published_at = self.published_at or timezone.now()
        self.is_listed = self.is_listed or not settings.QUALITY_GATE
        self.save(update_fields=["is_published", "published_at", "is_listed"])

    def unpublish(self):
        self.is_published = False
        self.save(update_fields=["is_published"])

    def list_anyway(self, user, reason: str):
        """An admin lists it whatever the gate said; the reason is required and recorded."""
        reason = (reason or "").strip()
        if not reason:
            raise ValueError("a reason is required to list a generator the gate did not pass")
        self.is_listed = True
        self.listed_reason, self.listed_by, self.listed_at = reason, user, timezone.now()
        self.save(update_fields=["is_listed", "listed_reason", "listed_by", "listed_at"])

    def unlist(self):
        self.is_listed = False
        self.listed_reason, self.listed_by, self.listed_at = "", None, None
        self.save(update_fields=["is_listed", "listed_reason", "listed_by", "listed_at"])


class GenerationRequest(Job):
    class Kind(models.TextChoices):
        SINGLE = "single", "Single image"
        BATCH = "batch", "Batch"
        WALK = "walk", "Latent walk"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    ACTIVE = (Status.QUEUED, Status.RUNNING)
    # The job kernel (nftsite.jobs): claimed and rendered by this task, on its own lease.
    task_name = "gan_app.tasks.generate_images"
    lease_kind = "generation"
    done_status = Status.DONE
    message_field = "error"

    generator = models.ForeignKey(Generator, on_delete=models.CASCADE, related_name="requests")
    # What status, page and ZIP URLs name: the pk is sequential, so it would let anyone walk
    # through every visitor's requests.
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.SINGLE)
    seeds = models.JSONField(default=list, help_text="Seeds asked for (walk: the two ends).")
    params = models.JSONField(default=dict, blank=True, help_text="Walk steps, traits, ...")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED)
    client_key = models.CharField(max_length=64, blank=True, help_text="Hashed client address.")
    # What the rate limit counts (a batch its seeds, a walk its steps): summed by the database,
    # so a generous limit does not read every request in its window back.
    image_count = models.PositiveIntegerField(default=1, help_text="Images the request renders.")
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["status", "created_at"], name="genreq_status_created"),
            models.Index(fields=["client_key", "created_at"], name="genreq_client_created"),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} #{self.pk} from {self.generator}"


class GeneratedImage(models.Model):
    """One image from (generator, seed, conditioning). Made once, then served from storage."""

    generator = models.ForeignKey(Generator, on_delete=models.CASCADE, related_name="images")
    request = models.ForeignKey(
        GenerationRequest, on_delete=models.SET_NULL, null=True, blank=True, related_name="images"
    )
    seed = models.BigIntegerField()
    # "" for unconditional generators; a canonical trait string for conditional ones.
    condition_key = models.CharField(max_length=500, blank=True, default="")
    position = models.PositiveSmallIntegerField(default=0, help_text="Order within its request.")
    image = models.FileField(upload_to="generated/", max_length=300)
    image_sha256 = models.CharField(max_length=64, blank=True)
    metadata = models.JSONField(default=dict, blank=True, help_text="ERC-721 metadata JSON.")
    traits = models.JSONField(default=dict, blank=True, help_text="Traits the classifier sees.")
    rarity_score = models.FloatField(null=True, blank=True)
    nearest_distance = models.FloatField(null=True, blank=True)
    is_near_copy = models.BooleanField(default=False)
    excluded_traits = models.JSONField(
        default=list,
        blank=True,
        help_text='Excluded trait values the labelling read ("type: value"): withheld.',
    )
    is_hidden = models.BooleanField(default=False, help_text="Hidden from the public gallery.")
    views = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["generator", "seed", "condition_key"], name="generated_unique_seed"
            ),
            models.CheckConstraint(condition=Q(seed__gte=0), name="generated_seed_non_negative"),
        ]
        indexes = [models.Index(fields=["is_hidden", "created_at"], name="generated_gallery")]

    def __str__(self):
        return f"{self.generator.slug} seed {self.seed}"

    # Permalinks: a conditional generator's image is named by its traits too (?traits=<key>).
    def get_absolute_url(self):
        return self._permalink("gan:image")

    def png_url(self):
        return self._permalink("gan:image_png")

    def _permalink(self, name):
        path = reverse(name, args=[self.generator.slug, self.seed])
        return f"{path}?{urlencode({'traits': self.condition_key})}" if self.condition_key else path

    def count_view(self):
        GeneratedImage.objects.filter(pk=self.pk).update(views=F("views") + 1)


class ImageReport(models.Model):
    """A visitor's "Report" on a public image: queued for moderation in the admin."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        HIDDEN = "hidden", "Image hidden"
        DISMISSED = "dismissed", "Dismissed"

    image = models.ForeignKey(GeneratedImage, on_delete=models.CASCADE, related_name="reports")
    reason = models.TextField(blank=True, max_length=1000)
    client_key = models.CharField(max_length=64, help_text="Hashed client address.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["client_key", "created_at"], name="report_client_created"),
            models.Index(fields=["status", "created_at"], name="report_status_created"),
        ]

    def __str__(self):
        return f"Report #{self.pk} on {self.image}"


class FabricationJob(Job):
    """A whole new collection fabricated by a generator: ``gan_app.fabrication``.

    The worker stores each token's PNG, then every few tokens the fabricator's state
    (``state_file``), so a run whose worker was killed continues where the state left off.
    """

    # The same life as a training run's: queued, running, paused, finished, failed, cancelled.
    Status = TrainingRun.Status
    ACTIVE = (Status.QUEUED, Status.RUNNING)
    task_name = "gan_app.tasks.fabricate_collection"
    lease_kind = "fabrication"
    message_field = "error"

    generator = models.ForeignKey(Generator, on_delete=models.CASCADE, related_name="fabrications")
    collection = models.OneToOneField(
        Collection,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="fabrication",
        help_text="The fabricated collection, once made.",
    )
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED)
    count = models.PositiveIntegerField(help_text="Tokens requested.")
    seed = models.BigIntegerField(default=0)
    traits = models.JSONField(
        null=True, blank=True, help_text='"source", "uniform" or a {type: {value: weight}} table.'
    )
    image_uri = models.CharField(
        max_length=500, default="{id}.png", help_text="ERC-721 image URI template with {id}."
    )
    made = models.PositiveIntegerField(default=0)
    candidates = models.PositiveIntegerField(default=0)
    state_file = models.FileField(upload_to="fabrication/", blank=True, max_length=300)
    export_file = models.FileField(upload_to="fabrication/", blank=True, max_length=300)
    result = models.JSONField(default=dict, blank=True, help_text="Rejections, provenance, ...")
    notes = models.TextField(blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"Fabrication #{self.pk} ({self.generator.slug}, {self.count:,} tokens)"

    @property
    def percent(self):
        return 100.0 * self.made / self.count if self.count else 0.0

    def pause(self) -> bool:
        """Queued or running -> paused; the worker stops at its next checkpoint."""
        rows = FabricationJob.objects.filter(pk=self.pk, status__in=self.ACTIVE)
        paused = rows.update(status=self.Status.PAUSED) == 1
        self.refresh_from_db()
        return paused

    def resume(self, *, send: bool = True) -> bool:
        """Paused (or failed) -> queued, and send the task again (``send=False``: the caller
        runs it itself, as ``create_job``'s); the state file continues it."""
        rows = FabricationJob.objects.filter(
            pk=self.pk, status__in=(self.Status.PAUSED, self.Status.FAILED)
        )
        resumed = rows.update(status=self.Status.QUEUED, error="", finished_at=None) == 1
        self.refresh_from_db()
        if resumed and send:
            self.dispatch()
        return resumed
