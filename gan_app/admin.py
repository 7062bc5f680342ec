from django.contrib import admin

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


class GeneratedImageInline(admin.TabularInline):
    model = GeneratedImage
    extra = 0
    fields = ("seed", "image", "is_hidden", "is_near_copy")
    readonly_fields = ("seed", "image", "is_near_copy")


@admin.register(GenerationRequest)
class GenerationRequestAdmin(admin.ModelAdmin):
    list_display = ("id", "generator", "kind", "status", "created_at", "finished_at")
    list_filter = ("status", "kind", "generator")
    search_fields = ("generator__slug", "task_id")
    raw_id_fields = ("generator",)
    readonly_fields = (
        "status",
        "client_key",
        "error",
        "task_id",
        "created_at",
        "started_at",
        "finished_at",
    )
    inlines = [GeneratedImageInline]


@admin.register(GeneratedImage)
class GeneratedImageAdmin(admin.ModelAdmin):
    list_display = ("__str__", "generator", "seed", "is_hidden", "is_near_copy", "created_at")
    list_filter = ("is_hidden", "is_near_copy", "generator")
    search_fields = ("generator__slug", "seed")
    raw_id_fields = ("generator", "request")
    readonly_fields = ("image_sha256", "nearest_distance", "views", "created_at")
