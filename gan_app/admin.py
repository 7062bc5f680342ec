from django.contrib import admin, messages
from django.utils.html import format_html

from .models import Checkpoint, GeneratedImage, GenerationRequest, Generator, TrainingRun


class CheckpointInline(admin.TabularInline):
    model = Checkpoint
    extra = 0
    fields = ("epoch", "state_file", "grid", "created_at")
    readonly_fields = fields
    can_delete = False


@admin.register(TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin):
    list_display = (
        "__str__",
        "training_set",
        "status",
        "resolution",
        "epoch_done",
        "epochs_total",
        "images_per_second",
        "created_at",
    )
    list_filter = ("status", "resolution", "conditional")
    search_fields = ("name", "training_set__name", "training_set__collection__slug")
    raw_id_fields = ("training_set",)
    readonly_fields = (
        "status",
        "control",
        "epoch_done",
        "images_per_second",
        "eta_seconds",
        "loss_history",
        "error",
        "task_id",
        "chunks_run",
        "created_at",
        "started_at",
        "heartbeat_at",
        "finished_at",
    )
    inlines = [CheckpointInline]


@admin.register(Checkpoint)
class CheckpointAdmin(admin.ModelAdmin):
    list_display = ("run", "epoch", "created_at")
    list_filter = ("run",)
    raw_id_fields = ("run",)
    readonly_fields = ("created_at",)


@admin.register(Generator)
class GeneratorAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "slug",
        "collection",
        "version",
        "resolution",
        "epoch",
        "is_published",
        "created_at",
    )
    list_filter = ("is_published", "collection", "conditional", "resolution")
    search_fields = ("name", "slug", "collection__slug")
    raw_id_fields = ("collection", "training_run", "checkpoint")
    readonly_fields = ("model_sha256", "published_at", "created_at")


# --- Generation and moderation (public site) ---------------------------------------------------


class GeneratedImageInline(admin.TabularInline):
    model = GeneratedImage
    extra = 0
    fields = ("thumbnail", "seed", "is_hidden", "is_near_copy")
    readonly_fields = ("thumbnail", "seed", "is_near_copy")
    can_delete = False

    @admin.display(description="Image")
    def thumbnail(self, obj):
        return image_thumbnail(obj)


def image_thumbnail(image, size=64):
    if not image.image:
        return "—"
    return format_html(
        '<img src="{}" width="{}" height="{}" alt="" style="image-rendering: pixelated">',
        image.image.url,
        size,
        size,
    )


@admin.register(GenerationRequest)
class GenerationRequestAdmin(admin.ModelAdmin):
    list_display = ("id", "generator", "kind", "status", "seed_list", "created_at", "latency")
    list_filter = ("status", "kind", "generator")
    search_fields = ("generator__slug", "task_id", "client_key")
    raw_id_fields = ("generator",)
    date_hierarchy = "created_at"
    readonly_fields = (
        "generator",
        "kind",
        "seeds",
        "params",
        "status",
        "client_key",
        "error",
        "task_id",
        "created_at",
        "started_at",
        "finished_at",
    )
    inlines = [GeneratedImageInline]

    def has_add_permission(self, request):
        return False  # requests come from visitors (or manage.py generate), not the admin

    @admin.display(description="Seeds")
    def seed_list(self, obj):
        seeds = [str(s) for s in obj.seeds[:4]]
        return ", ".join(seeds) + (" …" if len(obj.seeds) > 4 else "")

    @admin.display(description="Took")
    def latency(self, obj):
        if not obj.finished_at:
            return "—"
        return f"{(obj.finished_at - obj.created_at).total_seconds() * 1000:.0f} ms"


@admin.register(GeneratedImage)
class GeneratedImageAdmin(admin.ModelAdmin):
    """Moderation: hide keeps a seed withdrawn (its permalinks answer 410 and it cannot be
    generated again); delete removes the row and file (the seed can be generated again)."""

    list_display = (
        "thumbnail",
        "__str__",
        "generator",
        "seed",
        "is_hidden",
        "is_near_copy",
        "views",
        "created_at",
    )
    list_display_links = ("thumbnail", "__str__")
    list_filter = ("is_hidden", "is_near_copy", "generator")
    search_fields = ("generator__slug", "=seed")
    raw_id_fields = ("generator", "request")
    date_hierarchy = "created_at"
    actions = ["hide", "unhide"]
    readonly_fields = (
        "preview",
        "generator",
        "request",
        "seed",
        "condition_key",
        "position",
        "image",
        "image_sha256",
        "metadata",
        "traits",
        "rarity_score",
        "nearest_distance",
        "views",
        "created_at",
    )
    fields = ("preview", "is_hidden", "is_near_copy", *readonly_fields[1:])

    def has_add_permission(self, request):
        return False

    @admin.display(description="Image")
    def thumbnail(self, obj):
        return image_thumbnail(obj, 48)

    @admin.display(description="Preview")
    def preview(self, obj):
        return image_thumbnail(obj, 256)

    @admin.action(description="Hide from the public (permalinks answer 410)")
    def hide(self, request, queryset):
        count = queryset.update(is_hidden=True)
        self.message_user(request, f"Hid {count} image(s).", messages.SUCCESS)

    @admin.action(description="Show again")
    def unhide(self, request, queryset):
        count = queryset.update(is_hidden=False)
        self.message_user(request, f"{count} image(s) visible again.", messages.SUCCESS)


# --- Evaluation (issue 7): a link from the run's page to its evaluation page ------------------
from .admin_evaluation import evaluation_link  # noqa: E402

TrainingRunAdmin.evaluation = admin.display(description="Evaluation")(
    lambda self, obj: evaluation_link(obj)
)
TrainingRunAdmin.readonly_fields = (*TrainingRunAdmin.readonly_fields, "evaluation")
