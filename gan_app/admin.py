from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import path, reverse
from django.utils.cache import patch_cache_control
from django.utils.decorators import method_decorator
from django.utils.html import format_html, format_html_join
from django.views.decorators.http import require_POST

from nftsite.admin_display import json_table
from nftsite.admin_forms import ReasonForm, form_page

from . import publishing
from .evaluation import admin as admin_evaluation
from .evaluation import gate as quality_gate
from .evaluation.admin import evaluation_link
from .fabrication.admin import FabricationJobAdmin, fabricate_action
from .generation import moderation
from .models import (
    Checkpoint,
    FabricationJob,
    GeneratedImage,
    GenerationRequest,
    Generator,
    ImageReport,
    TrainingRun,
)
from .training import runs as training
from .training.forms import GeneratorImportForm, StartRunForm


class CheckpointInline(admin.TabularInline):
    model = Checkpoint
    extra = 0
    fields = ("epoch", "state_file", "grid", "created_at")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False  # checkpoints are written by the training worker


@admin.register(TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin):
    """The run page: progress, loss chart, live grid, grid timeline, controls, publish."""

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
    # The loss history is drawn as the chart above; its raw JSON and the config stay folded.
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "name",
                    "training_set",
                    "status",
                    "control",
                    "error",
                    "evaluation",
                    ("resolution", "seed", "auto_publish"),
                    ("epoch_done", "epochs_total", "chunks_run"),
                    ("images_per_second", "eta_seconds"),
                    "sample_grid",
                    ("created_at", "started_at", "heartbeat_at", "finished_at"),
                )
            },
        ),
        (
            "Raw data",
            {"classes": ("collapse",), "fields": ("config_table", "loss_history", "task_id")},
        ),
    )
    readonly_fields = (
        "training_set",
        "status",
        "control",
        "config_table",
        "resolution",
        "seed",
        "epochs_total",
        "epoch_done",
        "images_per_second",
        "eta_seconds",
        "loss_history",
        "error",
        "task_id",
        "chunks_run",
        "auto_publish",
        "sample_grid",
        "created_at",
        "started_at",
        "heartbeat_at",
        "finished_at",
        "evaluation",
    )
    exclude = ("conditional", "config")
    inlines = [CheckpointInline]
    change_form_template = "admin/gan_app/trainingrun/change_form.html"

    @admin.display(description="Config")
    def config_table(self, obj):
        return json_table(obj.config)

    @admin.display(description="Evaluation")
    def evaluation(self, obj):
        return evaluation_link(obj)

    CONTROLS = {
        "pause": training.pause_run,
        "cancel": training.cancel_run,
        "resume": training.resume_run,
        "retry": training.retry_run,
    }

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("start/", view(self.start_view), name="gan_app_trainingrun_start"),
            path(
                "<int:object_id>/status.json",
                view(self.status_view),
                name="gan_app_trainingrun_status",
            ),
            path(
                "<int:object_id>/live-grid.png",
                view(self.live_grid_view),
                name="gan_app_trainingrun_live_grid",
            ),
            path(
                "<int:object_id>/control/<str:action>/",
                view(self.control_view),
                name="gan_app_trainingrun_control",
            ),
            path(
                "<int:object_id>/publish/<int:checkpoint_id>/",
                view(self.publish_view),
                name="gan_app_trainingrun_publish",
            ),
            # The run's evaluation page (gan_app.evaluation.admin).
            path(
                "<int:pk>/evaluation/",
                view(admin_evaluation.run_evaluation),
                name="gan_app_trainingrun_evaluation",
            ),
            path(
                "<int:pk>/evaluation/evaluate/",
                view(admin_evaluation.evaluate_all),
                name="gan_app_trainingrun_evaluate",
            ),
            *super().get_urls(),
        ]

    def add_view(self, request, form_url="", extra_context=None):
        # Runs are started from a training set and validated hyperparameters, not typed in.
        return redirect("admin:gan_app_trainingrun_start")

    def change_view(self, request, object_id, form_url="", extra_context=None):
        run = self.get_object(request, object_id)
        if run is not None:
            extra_context = {**(extra_context or {}), **self._dashboard(request, run)}
        return super().change_view(request, object_id, form_url, extra_context)

    def _dashboard(self, request, run):
        published = {g.checkpoint_id: g for g in run.generators.exclude(checkpoint=None)}
        checkpoints = list(run.checkpoints.order_by("-epoch"))
        for checkpoint in checkpoints:
            checkpoint.generator = published.get(checkpoint.pk)
        return {
            "run_status": training.run_status(run),
            "checkpoints": checkpoints,
            "can_control": self.has_change_permission(request, run),
        }

    def start_view(self, request):
        if not self.has_add_permission(request):
            raise PermissionDenied
        initial = {"training_set": request.GET.get("training_set")}
        form = StartRunForm(request.POST or None, initial=initial)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                run = training.create_run(
                    data["training_set"],
                    name=data["name"],
                    auto_publish=data["auto_publish"],
                    **data["hyperparameters"],
                )
            except training.TrainingSetupError as exc:
                form.add_error(None, str(exc))
            else:
                self.message_user(request, f"{run} queued.", messages.SUCCESS)
                return redirect("admin:gan_app_trainingrun_change", run.pk)
        template = "admin/gan_app/trainingrun/start.html"
        return form_page(
            self,
            request,
            template,
            "Start a training run",
            form,
            set_defaults=form.set_defaults(),
        )

    def status_view(self, request, object_id):
        run = get_object_or_404(TrainingRun, pk=object_id)
        if not self.has_view_permission(request, run):
            raise PermissionDenied
        return JsonResponse(training.run_status(run))

    def live_grid_view(self, request, object_id):
        """The newest sample grid at one address (the page asks with ``?v=<epoch>``)."""
        run = get_object_or_404(TrainingRun, pk=object_id)
        if not self.has_view_permission(request, run):
            raise PermissionDenied
        grid = training.latest_grid(run)
        if grid is None:
            raise Http404("no sample grid yet")
        response = FileResponse(grid.open("rb"), content_type="image/png")
        patch_cache_control(response, private=True, max_age=3600 if "v" in request.GET else 0)
        return response

    def control_view(self, request, object_id, action):
        run = self._posted_run(request, object_id)
        control = self.CONTROLS.get(action)
        if control is None:
            raise Http404(f"no control {action!r}")
        try:
            control(run)
        except training.TrainingSetupError as exc:
            self.message_user(request, str(exc), messages.WARNING)
        else:
            self.message_user(request, f"{run}: {action} requested ({run.get_status_display()}).")
        return redirect("admin:gan_app_trainingrun_change", run.pk)

    @method_decorator(require_POST)
    def publish_view(self, request, object_id, checkpoint_id):
        """The one way to publish a checkpoint (the run's page and its evaluation page both
        post here): it needs the right to change the run and to add a generator."""
        run = self._posted_run(request, object_id)
        if not request.user.has_perm("gan_app.add_generator"):
            raise PermissionDenied
        checkpoint = get_object_or_404(Checkpoint, pk=checkpoint_id, run=run)
        generator = publishing.publish_checkpoint(checkpoint, publish=True)
        if not settings.EVALUATE_ON_PUBLISH:  # otherwise publishing queued it already
            # Its report: the checkpoint's when evaluated (publishing copies it), else computed
            # on the train queue; either way its images get labelled once a classifier exists.
            publishing.queue_evaluation(generator)
        url = reverse("admin:gan_app_generator_change", args=[generator.pk])
        self.message_user(
            request,
            format_html(
                'Epoch {} is published as <a href="{}">{}</a>.',
                checkpoint.epoch,
                url,
                generator.slug,
            ),
            messages.SUCCESS,
        )
        return redirect("admin:gan_app_trainingrun_change", run.pk)

    def _posted_run(self, request, object_id):
        if request.method != "POST":
            raise PermissionDenied("POST only")
        run = get_object_or_404(TrainingRun, pk=object_id)
        if not self.has_change_permission(request, run):
            raise PermissionDenied
        return run


@admin.register(Checkpoint)
class CheckpointAdmin(admin.ModelAdmin):
    list_display = ("run", "epoch", "created_at")
    list_filter = ("run",)
    raw_id_fields = ("run",)
    readonly_fields = ("created_at", "losses_table", "metrics_table")
    exclude = ("losses", "metrics")

    def has_add_permission(self, request):
        return False  # checkpoints are written by the training worker

    @admin.display(description="Losses")
    def losses_table(self, obj):
        return json_table(obj.losses)

    @admin.display(description="Metrics")
    def metrics_table(self, obj):
        return json_table(obj.metrics)


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
        "is_listed",
        "gate",
        "created_at",
    )
    list_filter = ("is_published", "is_listed", "collection", "conditional", "resolution")
    search_fields = ("name", "slug", "collection__slug")
    raw_id_fields = ("collection", "training_run", "checkpoint")
    readonly_fields = (
        "model_sha256",
        "published_at",
        "created_at",
        "is_listed",
        "gate",
        "gate_checks",
        "listed_reason",
        "listed_by",
        "listed_at",
        "manifest_table",
        "metrics_table",
    )
    # manifest and metrics are written by publishing and evaluation; shown as tables.
    exclude = ("gate_verdict", "manifest", "metrics")
    actions = ["export_zip", "unlist", fabricate_action]
    change_list_template = "admin/gan_app/generator/change_list.html"

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("import/", view(self.import_view), name="gan_app_generator_import"),
            path("<int:pk>/list/", view(self.list_anyway_view), name="gan_app_generator_list"),
            *super().get_urls(),
        ]

    @admin.display(description="Manifest")
    def manifest_table(self, obj):
        return json_table(obj.manifest)

    @admin.display(description="Metrics")
    def metrics_table(self, obj):
        return json_table(obj.metrics)

    @admin.display(description="Quality gate")
    def gate(self, obj):
        """Passed, or the failing checks (what keeps it unlisted), or not evaluated yet."""
        if not obj.gate_verdict:
            return "not evaluated yet"
        if obj.gate_verdict.get("passed"):
            return "passed"
        return "failed: " + "; ".join(quality_gate.failing(obj))

    @admin.display(description="Gate checks")
    def gate_checks(self, obj):
        """Each check's value against its threshold (``QUALITY_GATE_*``), passed or not."""
        table = quality_gate.rows(obj)
        if not table:
            return "—"
        return format_html(
            "<table><thead><tr><th>check</th><th>value</th><th>needs</th><th>result</th></tr>"
            "</thead><tbody>{}</tbody></table>",
            format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", table),
        )

    @admin.action(description="Unlist (hide from the public; staff can still preview)")
    def unlist(self, request, queryset):
        for generator in queryset:
            generator.unlist()
        self.message_user(request, f"Unlisted {queryset.count()} generator(s).", messages.SUCCESS)

    def list_anyway_view(self, request, pk):
        """List a generator whatever the gate said, with a required, recorded reason."""
        generator = get_object_or_404(Generator, pk=pk)
        if not self.has_change_permission(request, generator):
            raise PermissionDenied
        form = ReasonForm(
            request.POST if request.method == "POST" else None,
            help_text="Required: why it should be public although the gate did not pass it.",
        )
        if request.method == "POST" and form.is_valid():
            generator.list_anyway(request.user, form.cleaned_data["reason"])
            return self._done(request, generator, "Listed")
        failing = quality_gate.failing(generator)
        template = "admin/gan_app/generator/list_anyway.html"
        title = f"List {generator.slug} anyway"
        return form_page(self, request, template, title, form, generator=generator, failing=failing)

    @admin.action(description="Download as {slug}_generator.zip")
    def export_zip(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Choose exactly one generator to export.", messages.WARNING)
            return None
        generator = queryset.get()
        response = HttpResponse(
            publishing.export_generator_zip(generator), content_type="application/zip"
        )
        filename = publishing.export_filename(generator)
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response

    def import_view(self, request):
        if not self.has_add_permission(request):
            raise PermissionDenied
        posted = request.method == "POST"
        form = GeneratorImportForm(
            request.POST if posted else None, request.FILES if posted else None
        )
        if posted and form.is_valid():
            try:
                generator = publishing.import_generator_zip(
                    form.cleaned_data["file"],
                    collection=form.cleaned_data["collection"],
                    publish=form.cleaned_data["publish"],
                )
            except publishing.GeneratorImportError as exc:
                form.add_error("file", str(exc))
            else:
                return self._done(request, generator, "Imported")
        template = "admin/gan_app/generator/import.html"
        return form_page(self, request, template, "Import a generator", form)

    def _done(self, request, generator, verb):
        """The end of a generator form page that succeeded: say so, show the generator."""
        self.message_user(request, f"{verb} {generator.slug}.", messages.SUCCESS)
        return redirect("admin:gan_app_generator_change", generator.pk)


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


@admin.register(ImageReport)
class ImageReportAdmin(admin.ModelAdmin):
    """Visitors' reports, newest first: hide the image (410 for everyone) or dismiss."""

    list_display = ("thumbnail", "image", "reason", "status", "created_at")
    list_filter = ("status",)
    readonly_fields = ("image", "reason", "client_key", "created_at")
    actions = ["hide_image", "dismiss"]

    def has_add_permission(self, request):
        return False  # reports come from the public image pages

    @admin.display(description="Image")
    def thumbnail(self, obj):
        return image_thumbnail(obj.image)

    @admin.action(description="Hide the image (and close its reports)")
    def hide_image(self, request, queryset):
        count = moderation.hide(queryset)
        self.message_user(request, f"Hid {count} image(s).", messages.SUCCESS)

    @admin.action(description="Dismiss (the image stays)")
    def dismiss(self, request, queryset):
        count = moderation.dismiss(queryset)
        self.message_user(request, f"Dismissed {count} report(s).", messages.SUCCESS)


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


admin.site.register(FabricationJob, FabricationJobAdmin)
