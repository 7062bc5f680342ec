"""The admin's side of fabrication: the start form (reached from the Generator action
"Fabricate a collection"), the job list with progress, pause/resume/cancel and the export."""

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import FileResponse
from django.shortcuts import redirect
from django.urls import path, reverse
from django.utils.html import format_html

from nftsite.admin_forms import form_page

from ..models import Generator
from . import runs


class FabricateForm(forms.Form):
    generator = forms.ModelChoiceField(
        queryset=Generator.objects.filter(is_published=True, is_listed=True).order_by("slug"),
        help_text="A listed (published) generator.",
    )
    count = forms.IntegerField(min_value=1, initial=1000, help_text="Tokens to make.")
    seed = forms.IntegerField(min_value=0, initial=0, help_text="Same seed, same collection.")
    traits = forms.CharField(
        initial="source",
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text='source, uniform, or a JSON table {"Type": {"Value": weight}} '
        "(conditional generators).",
    )
    image_uri = forms.CharField(
        initial="{id}.png", help_text="ERC-721 image URI, e.g. ipfs://CID/{id}.png"
    )

    def clean_count(self):
        count = self.cleaned_data["count"]
        if count > settings.FABRICATE_MAX_COUNT:
            raise forms.ValidationError(
                f"At most {settings.FABRICATE_MAX_COUNT:,} tokens (FABRICATE_MAX_COUNT)."
            )
        return count

    def clean_traits(self):
        try:
            return runs.parse_traits(self.cleaned_data["traits"])
        except runs.FabricationSetupError as exc:
            raise forms.ValidationError(str(exc)) from None


class FabricationJobAdmin(admin.ModelAdmin):
    list_display = ("id", "generator", "status", "progress", "collection_link", "created_at")
    list_filter = ("status",)
    raw_id_fields = ("generator", "collection")
    readonly_fields = (
        "generator",
        "collection",
        "status",
        "count",
        "seed",
        "traits",
        "image_uri",
        "made",
        "candidates",
        "state_file",
        "export_file",
        "result",
        "notes",
        "error",
        "task_id",
        "created_at",
        "started_at",
        "heartbeat_at",
        "finished_at",
    )
    actions = ["pause", "resume", "cancel", "download_export"]

    def has_add_permission(self, request):
        return False  # jobs start from the form (start_view)

    def get_urls(self):
        view = self.admin_site.admin_view
        start = path("start/", view(self.start_view), name="gan_app_fabricationjob_start")
        return [start, *super().get_urls()]

    @admin.display(description="Progress")
    def progress(self, job):
        return f"{job.made:,} / {job.count:,} ({job.percent:.0f}%)"

    @admin.display(description="Collection")
    def collection_link(self, job):
        if not job.collection_id:
            return "—"
        url = reverse("gan:fabrication_compare", args=[job.collection.slug])
        return format_html('<a href="{}">{}</a>', url, job.collection.slug)

    def start_view(self, request):
        if not self.has_change_permission(request):
            raise PermissionDenied
        form = FabricateForm(
            request.POST or None, initial={"generator": request.GET.get("generator")}
        )
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                job = runs.create_job(
                    data["generator"],
                    data["count"],
                    data["seed"],
                    data["traits"],
                    data["image_uri"],
                )
            except runs.FabricationSetupError as exc:
                form.add_error(None, str(exc))
            else:
                self.message_user(request, f"{job} queued.", messages.SUCCESS)
                return redirect("admin:gan_app_fabricationjob_changelist")
        template = "admin/gan_app/fabricationjob/start.html"
        return form_page(self, request, template, "Fabricate a collection", form)

    def _control(self, request, queryset, control, verb):
        done = sum(bool(control(job)) for job in queryset)
        self.message_user(request, f"{done} of {queryset.count()} job(s) {verb}.")

    @admin.action(description="Pause")
    def pause(self, request, queryset):
        self._control(request, queryset, runs.pause, "paused")

    @admin.action(description="Resume")
    def resume(self, request, queryset):
        self._control(request, queryset, runs.resume, "resumed")

    @admin.action(description="Cancel")
    def cancel(self, request, queryset):
        self._control(request, queryset, runs.cancel, "cancelled")

    @admin.action(description="Download the export (.zip)")
    def download_export(self, request, queryset):
        jobs = list(queryset.exclude(export_file=""))
        if len(jobs) != 1:
            self.message_user(request, "Choose one finished job to download.", messages.WARNING)
            return None
        job = jobs[0]
        name = job.export_file.name.rsplit("/", 1)[-1]
        return FileResponse(job.export_file.open("rb"), as_attachment=True, filename=name)


def fabricate_action(modeladmin, request, queryset):
    """Generator action: the fabrication form for the one chosen generator."""
    if queryset.count() != 1:
        modeladmin.message_user(request, "Choose exactly one generator.", messages.WARNING)
        return None
    url = reverse("admin:gan_app_fabricationjob_start")
    return redirect(f"{url}?generator={queryset.get().pk}")


fabricate_action.short_description = "Fabricate a collection"
