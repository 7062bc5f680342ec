"""Collections, their tokens, traits and sales; ingest jobs and training subsets."""

from datetime import timedelta

from django.db import models
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone

from nftsite.admin_display import native
from nftsite.jobs import Job, lease_seconds
from nftsite.readings import Readings

from .traits import is_no_trait

# Native amounts keep 18 decimals (wei precision for ETH); 60 digits leave room for absurd prices.
NATIVE_AMOUNT = {"max_digits": 60, "decimal_places": 18}
USD_AMOUNT = {"max_digits": 40, "decimal_places": 6}


class Collection(models.Model):
    class Source(models.TextChoices):
        OPENSEA = "opensea", "OpenSea API"
        ARCHIVE = "archive", "Seed archive"
        DEMO = "demo", "Synthetic demo"
        MANUAL = "manual", "Manual"
        FABRICATED = "fabricated", "Fabricated by a generator"

    slug = models.SlugField(max_length=200, unique=True)
    name = models.CharField(max_length=300)
    description = models.TextField(blank=True)
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.MANUAL)
    contract_address = models.CharField(max_length=64, blank=True)
    chain = models.CharField(max_length=32, default="ethereum")
    schema_name = models.CharField(max_length=32, blank=True)
    external_url = models.URLField(max_length=500, blank=True)
    supply = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Token count the source reports (used to reconcile ingests).",
    )
    cover_image = models.FileField(upload_to="covers/", blank=True)
    # A fabricated collection's original (its generator is on gan_app's FabricationJob: the
    # catalog knows nothing of generators).
    source_collection = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="fabrications"
    )
    is_public = models.BooleanField(default=True)
    # Bumped whenever tokens, traits or sales change; analytics record the version they saw.
    data_version = models.PositiveIntegerField(default=0)
    analytics = models.JSONField(default=dict, blank=True)
    analytics_version = models.PositiveIntegerField(null=True, blank=True)
    analytics_computed_at = models.DateTimeField(null=True, blank=True)
    # What analytics found in the images (collections_app.hooks.IMAGE_PROFILE): "data_version",
    # "images" (how many were read), "pixel_art" (native grid, cell size, palette, background;
    # None when the images are not pixel art) and "reason" (why not, when it is None).
    image_profile = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("collections:detail", args=[self.slug])

    @property
    def is_fabricated(self):
        return self.source == self.Source.FABRICATED

    @property
    def analytics_fresh(self):
        return self.analytics_version == self.data_version and bool(self.analytics)

    def bump_data_version(self):
        """Mark analytics stale; called after any change to tokens, traits or sales."""
        Collection.objects.filter(pk=self.pk).update(
            data_version=F("data_version") + 1, updated_at=timezone.now()
        )
        self.refresh_from_db(fields=["data_version", "updated_at"])


class Trait(models.Model):
    collection = models.ForeignKey(Collection, on_delete=models.CASCADE, related_name="traits")
    trait_type = models.CharField(max_length=200)
    value = models.CharField(max_length=500)
    display_type = models.CharField(max_length=50, blank=True)
    count = models.PositiveIntegerField(default=0, help_text="Tokens in the collection with it.")
    # Content safeguard: an offensive value is left out of training sets (by default), refused
    # by conditional generation, and a generated image labelled with it is withheld.
    is_excluded = models.BooleanField(
        default=False, help_text="Offensive: not trained on, not generated, images withheld."
    )
    excluded_reason = models.TextField(blank=True)
    excluded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["trait_type", "value"]
        constraints = [
            models.UniqueConstraint(
                fields=["collection", "trait_type", "value"], name="trait_unique_per_collection"
            )
        ]
        indexes = [models.Index(fields=["collection", "count"], name="trait_coll_count")]

    def __str__(self):
        return f"{self.trait_type}: {self.value}"

    @classmethod
    def exclude_values(cls, traits, reason: str) -> int:
        """Mark trait values excluded; the reason is required and kept."""
        reason = (reason or "").strip()
        if not reason:
            raise ValueError("a reason is required to exclude a trait value")
        changed = traits.update(
            is_excluded=True, excluded_reason=reason, excluded_at=timezone.now()
        )
        forget_excluded()
        return changed

    @classmethod
    def allow_values(cls, traits) -> int:
        """Undo the exclusion of trait values."""
        changed = traits.update(is_excluded=False, excluded_reason="", excluded_at=None)
        forget_excluded()
        return changed

    @classmethod
    def excluded_pairs(cls, collection, max_age: float = 0.0) -> frozenset[tuple[str, str]]:
        """(trait_type, value) of the collection's excluded values (a model or its pk).

        ``max_age`` > 0: a reading this process made at most that many seconds ago will do
        (serving a stored image asks on every request). A change made in this process is seen
        at once; one made in another process (the admin's web worker) within ``max_age``.
        """
        key = getattr(collection, "pk", collection)

        def read():
            rows = cls.objects.filter(collection=key, is_excluded=True)
            return frozenset(rows.values_list("trait_type", "value"))

        return _excluded.get(key, max_age, read)


# Trait.excluded_pairs's readings in this process, by collection pk.
_excluded = Readings()


def forget_excluded() -> None:
    """Drop this process's readings of ``Trait.excluded_pairs`` (a trait row changed)."""
    _excluded.clear()


class Token(models.Model):
    # No index of its own: the unique (collection, token_id) constraint and the (collection, ...)
    # indexes below all lead with it, and one index fewer makes every rank rewrite cheaper.
    collection = models.ForeignKey(
        Collection, on_delete=models.CASCADE, related_name="tokens", db_index=False
    )
    token_id = models.CharField(max_length=80, help_text="uint256 as a decimal string.")
    token_number = models.BigIntegerField(
        null=True, blank=True, help_text="token_id as an integer when it fits, for ordering."
    )
    name = models.CharField(max_length=300, blank=True)
    description = models.TextField(blank=True)
    image = models.FileField(upload_to="tokens/", blank=True, max_length=300)
    image_url = models.URLField(max_length=2000, blank=True, help_text="Where the source had it.")
    image_sha256 = models.CharField(max_length=64, blank=True)
    image_size = models.PositiveIntegerField(null=True, blank=True, help_text="Bytes.")
    image_width = models.PositiveIntegerField(null=True, blank=True)
    image_height = models.PositiveIntegerField(null=True, blank=True)
    image_format = models.CharField(max_length=16, blank=True)
    owner_address = models.CharField(max_length=64, blank=True)
    metadata = models.JSONField(default=dict, blank=True, help_text="Raw metadata as ingested.")
    traits = models.ManyToManyField(Trait, through="TokenTrait", related_name="tokens")
    trait_count = models.PositiveSmallIntegerField(default=0)
    last_sale_amount = models.DecimalField(**NATIVE_AMOUNT, null=True, blank=True)
    last_sale_symbol = models.CharField(max_length=16, blank=True)
    last_sale_usd = models.DecimalField(**USD_AMOUNT, null=True, blank=True)
    last_sale_at = models.DateTimeField(null=True, blank=True)
    rarity_score = models.FloatField(null=True, blank=True, help_text="rarity.tools score.")
    rarity_rank = models.PositiveIntegerField(null=True, blank=True)
    ic_score = models.FloatField(null=True, blank=True, help_text="OpenRarity information content.")
    ic_rank = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["collection", "token_number", "token_id"]
        constraints = [
            models.UniqueConstraint(fields=["collection", "token_id"], name="token_unique_id"),
            models.CheckConstraint(
                condition=Q(last_sale_amount__isnull=True) | Q(last_sale_amount__gte=0),
                name="token_sale_amount_non_negative",
            ),
        ]
        indexes = [
            models.Index(fields=["collection", "token_number"], name="token_coll_number"),
            models.Index(fields=["collection", "rarity_rank"], name="token_coll_rarity_rank"),
            models.Index(fields=["collection", "ic_rank"], name="token_coll_ic_rank"),
            models.Index(fields=["collection", "last_sale_usd"], name="token_coll_sale_usd"),
        ]

    def __str__(self):
        return self.name or f"#{self.token_id}"

    def get_absolute_url(self):
        return reverse("collections:token", args=[self.collection.slug, self.token_id])


class TokenTrait(models.Model):
    token = models.ForeignKey(Token, on_delete=models.CASCADE)
    trait = models.ForeignKey(Trait, on_delete=models.CASCADE)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["token", "trait"], name="token_trait_unique")
        ]

    def __str__(self):
        return f"{self.token_id} has {self.trait_id}"

    @classmethod
    def pairs_for(cls, token_pks) -> list[list[tuple[str, str]]]:
        """Each token's (trait_type, value) pairs, sorted, in the order of ``token_pks``; a
        value that says the token lacks the type ("None", blank) is left out."""
        pairs = {pk: [] for pk in token_pks}
        rows = cls.objects.filter(token_id__in=list(pairs)).values_list(
            "token_id", "trait__trait_type", "trait__value"
        )
        rows = rows.order_by("trait__trait_type", "trait__value").iterator(chunk_size=5000)
        for token_id, trait_type, value in rows:
            if not is_no_trait(value):
                pairs[token_id].append((trait_type, value))
        return [pairs[pk] for pk in token_pks]


class Sale(models.Model):
    collection = models.ForeignKey(Collection, on_delete=models.CASCADE, related_name="sales")
    token = models.ForeignKey(Token, on_delete=models.CASCADE, related_name="sales")
    # Identifies the sale at its source (tx hash + log index, or "last_sale:<token>:<time>") so
    # ingesting the same events twice never duplicates a row.
    source_key = models.CharField(max_length=200)
    amount = models.DecimalField(**NATIVE_AMOUNT, help_text="Price in the payment token.")
    symbol = models.CharField(max_length=16)
    usd = models.DecimalField(**USD_AMOUNT, null=True, blank=True)
    usd_rate = models.DecimalField(
        max_digits=30, decimal_places=10, null=True, blank=True, help_text="USD per native unit."
    )
    quantity = models.PositiveIntegerField(default=1)
    timestamp = models.DateTimeField()
    tx_hash = models.CharField(max_length=80, blank=True)
    buyer = models.CharField(max_length=64, blank=True)
    seller = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-timestamp"]
        constraints = [
            models.UniqueConstraint(fields=["collection", "source_key"], name="sale_unique_source"),
            models.CheckConstraint(condition=Q(amount__gte=0), name="sale_amount_non_negative"),
        ]
        indexes = [
            models.Index(fields=["collection", "timestamp"], name="sale_coll_time"),
            models.Index(fields=["token", "timestamp"], name="sale_token_time"),
        ]

    def __str__(self):
        return f"{self.token} {native(self.amount, self.symbol)} @ {self.timestamp:%Y-%m-%d}"


class IngestJob(Job):
    class Kind(models.TextChoices):
        OPENSEA = "opensea", "OpenSea ingest"
        ARCHIVE_IMPORT = "archive_import", "Archive import"
        ARCHIVE_EXPORT = "archive_export", "Archive export"
        DEMO = "demo", "Demo collection"
        ANALYTICS = "analytics", "Analytics"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        PARTIAL = "partial", "Finished with errors"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    ACTIVE = (Status.QUEUED, Status.RUNNING)

    collection = models.ForeignKey(
        Collection, on_delete=models.CASCADE, related_name="ingest_jobs", null=True, blank=True
    )
    kind = models.CharField(max_length=20, choices=Kind.choices)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED)
    # Never secrets: the OpenSea key is read from settings by the worker, not stored here.
    params = models.JSONField(default=dict, blank=True)
    cursor = models.TextField(
        blank=True, help_text="Resume point (API cursor) after the last page."
    )
    pages_done = models.PositiveIntegerField(default=0)
    items_expected = models.PositiveIntegerField(null=True, blank=True)
    items_done = models.PositiveIntegerField(default=0)
    items_failed = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True, help_text="[{item, reason}] per item.")
    message = models.TextField(blank=True)
    result_file = models.FileField(upload_to="exports/", blank=True, max_length=300)
    attempts = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "created_at"], name="ingestjob_status_created")]

    def __str__(self):
        return f"{self.get_kind_display()} #{self.pk} ({self.status})"

    @property
    def is_active(self):
        return self.status in self.ACTIVE

    @property
    def percent(self):
        if not self.items_expected:
            return 100.0 if self.status == self.Status.SUCCEEDED else None
        return min(100.0, 100.0 * (self.items_done + self.items_failed) / self.items_expected)

    @property
    def rate(self):
        """Items per second since the job started."""
        if not self.started_at:
            return None
        end = self.finished_at or timezone.now()
        seconds = (end - self.started_at).total_seconds()
        return (self.items_done / seconds) if seconds > 0 else None

    # --- What the job kernel (nftsite.jobs) needs to know -------------------------------------

    TASKS = {
        Kind.OPENSEA: "collections_app.tasks.ingest_opensea",
        Kind.ARCHIVE_IMPORT: "collections_app.tasks.import_archive",
        Kind.ARCHIVE_EXPORT: "collections_app.tasks.export_archive",
        Kind.DEMO: "collections_app.tasks.build_demo",
        Kind.ANALYTICS: "collections_app.tasks.compute_analytics",
    }
    lease_kind = "ingest"

    @property
    def task_name(self):
        return self.TASKS[self.kind]

    def task_args(self):
        if self.kind == self.Kind.ANALYTICS:
            return [self.collection_id], {"force": True, "job_id": self.pk}
        return [self.pk], {}

    def final_status(self):
        return self.Status.PARTIAL if self.items_failed else self.Status.SUCCEEDED

    def job_lease_kind(self):
        return "analytics" if self.kind == self.Kind.ANALYTICS else "ingest"

    @classmethod
    def stale_running(cls):
        """Running jobs whose lease ran out, analytics on their own lease; a management
        command's job (``cli:`` owner) is its command's to resume, not the watchdog's."""
        now = timezone.now()
        analytics = models.Q(kind=cls.Kind.ANALYTICS)
        cutoff = {
            kind: now - timedelta(seconds=lease_seconds(kind)) for kind in ("ingest", "analytics")
        }
        return (
            cls.objects.filter(status=cls.Status.RUNNING)
            .filter(
                (analytics & models.Q(heartbeat_at__lt=cutoff["analytics"]))
                | (~analytics & models.Q(heartbeat_at__lt=cutoff["ingest"]))
            )
            .exclude(task_id__startswith="cli:")
        )


class TrainingSet(models.Model):
    """A frozen subset of a collection's tokens that a GAN is trained on."""

    collection = models.ForeignKey(
        Collection, on_delete=models.CASCADE, related_name="training_sets"
    )
    name = models.CharField(max_length=200)
    filter_spec = models.JSONField(
        default=dict, blank=True, help_text="The filters that chose the tokens, as given."
    )
    tokens = models.ManyToManyField(Token, related_name="training_sets", blank=True)
    token_count = models.PositiveIntegerField(default=0)
    stats = models.JSONField(default=dict, blank=True, help_text="Subset statistics at freeze.")
    data_version = models.PositiveIntegerField(
        default=0, help_text="The collection's data version when the list was frozen."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["collection", "name"]
        constraints = [
            models.UniqueConstraint(fields=["collection", "name"], name="trainingset_unique_name")
        ]

    def __str__(self):
        return f"{self.collection.slug}/{self.name}"
