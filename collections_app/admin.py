from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.core.files.storage import default_storage
from django.http import HttpResponseNotAllowed, JsonResponse
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from nftsite.admin_display import json_table, native, usd
from nftsite.admin_forms import ReasonForm, error_sentences, form_page, sentence

from .analytics import subsets
from .analytics.subsets import SubsetError, build_training_set
from .forms import ArchiveImportForm, OpenSeaIngestForm, TrainingSetBuildForm
from .ingest import launch
from .ingest.jobs import JobBusy
from .models import Collection, IngestJob, Sale, Token, TokenTrait, TrainingSet, Trait


def _job_link(job):
    url = reverse("admin:collections_app_ingestjob_change", args=[job.pk])
    return format_html('<a href="{}">job #{}</a>', url, job.pk)


PALETTE_SHOWN = 64  # swatches on the collection's admin page


@admin.register(Collection)
class CollectionAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "slug",
        "source",
        "chain",
        "supply",
        "data_version",
        "analytics_status",
        "is_public",
    )
    list_filter = ("source", "chain", "is_public")
    search_fields = ("name", "slug", "contract_address")
    prepopulated_fields = {"slug": ("name",)}
    readonly_fields = (
        "data_version",
        "analytics_version",
        "analytics_computed_at",
        "images",
        "created_at",
        "updated_at",
    )
    exclude = ("analytics", "image_profile")
    actions = ["reingest", "export_archives", "recompute_analytics"]
    change_list_template = "admin/collections_app/collection/change_list.html"

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path(
                "ingest-opensea/",
                view(self.ingest_opensea_view),
                name="collections_app_collection_ingest_opensea",
            ),
            path(
                "import-archive/",
                view(self.import_archive_view),
                name="collections_app_collection_import_archive",
            ),
            *super().get_urls(),
        ]

    def _form_page(self, request, form, title, submit):
        template = "admin/collections_app/ingest_form.html"
        return form_page(self, request, template, title, form, submit_label=submit)

    def ingest_opensea_view(self, request):
        if not self.has_add_permission(request):
            return redirect("admin:index")
        form = OpenSeaIngestForm(request.POST if request.method == "POST" else None)
        if request.method == "POST" and form.is_valid():
            slug = form.cleaned_data["slug"]
            collection, _ = Collection.objects.get_or_create(
                slug=slug, defaults={"name": slug, "source": Collection.Source.OPENSEA}
            )
            try:
                job = launch.queue_opensea_ingest(
                    collection,
                    api_url=form.cleaned_data["api_url"],
                    sales=form.cleaned_data["sales"],
                )
            except JobBusy as exc:
                self.message_user(request, str(exc), messages.WARNING)
                return redirect("admin:collections_app_ingestjob_changelist")
            self.message_user(
                request, format_html("Ingest of {} queued as {}.", slug, _job_link(job))
            )
            return redirect("admin:collections_app_ingestjob_change", job.pk)
        return self._form_page(request, form, "Ingest from OpenSea", "Start ingest")

    def import_archive_view(self, request):
        if not self.has_add_permission(request):
            return redirect("admin:index")
        posted = request.method == "POST"
        form = ArchiveImportForm(
            request.POST if posted else None, request.FILES if posted else None
        )
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            images = data["images_url"] or launch.store_upload(data["images_file"])
            metadata = data["metadata_url"] or launch.store_upload(data["metadata_file"])
            job = launch.queue_archive_import(images, metadata, slug=data["slug"])
            self.message_user(request, format_html("Import queued as {}.", _job_link(job)))
            return redirect("admin:collections_app_ingestjob_change", job.pk)
        return self._form_page(request, form, "Import archive", "Start import")

    @admin.action(description="Re-ingest from the original source")
    def reingest(self, request, queryset):
        for collection in queryset:
            try:
                job = launch.queue_reingest(collection)
            except JobBusy as exc:
                self.message_user(request, str(exc), messages.WARNING)
                continue
            if job is None:
                self.message_user(
                    request,
                    f"{collection.slug}: its source cannot be fetched again (an uploaded "
                    "archive); use Import archive.",
                    messages.WARNING,
                )
            else:
                self.message_user(request, format_html("{}: {}", collection.slug, _job_link(job)))

    @admin.action(description="Export archive (images + metadata zips)")
    def export_archives(self, request, queryset):
        for collection in queryset:
            job = launch.queue_archive_export(collection)
            self.message_user(
                request, format_html("{}: export queued as {}", collection.slug, _job_link(job))
            )

    @admin.display(description="Analytics")
    def analytics_status(self, obj):
        if not obj.analytics:
            return "not computed"
        if obj.analytics_fresh:
            return "fresh"
        return f"stale (v{obj.analytics_version} < v{obj.data_version})"

    @admin.display(description="Images")
    def images(self, obj):
        """What analytics found in the images: pixel art's grid and palette, or why not."""
        found = obj.image_profile or {}
        if not found:
            return "not profiled yet (analytics read the images)"
        art = found.get("pixel_art")
        if not art:
            return f"{found.get('reason') or 'not pixel art'} ({found.get('images', 0)} read)"
        width, height = art["grid"]
        swatches = format_html_join(
            "",
            '<span title="{}" style="display:inline-block;width:12px;height:12px;'
            'background:{};border:1px solid #8884"></span>',
            ((c, c) for c in art["palette"][:PALETTE_SHOWN]),
        )
        more = len(art["palette"]) - PALETTE_SHOWN
        return format_html(
            "Pixel art: {} x {} cells of {} px, {} colours, background {} ({} images read)<br>{}{}",
            width,
            height,
            art["block"],
            len(art["palette"]),
            art.get("background") or "none",
            found.get("images", 0),
            swatches,
            f" and {more} more" if more > 0 else "",
        )

    @admin.action(description="Recompute analytics (on a worker)")
    def recompute_analytics(self, request, queryset):
        from .analytics import refresh  # the analytics stack loads on use, not with the admin

        for collection in queryset:
            refresh.request(collection, force=True)
        self.message_user(
            request,
            f"Queued analytics for {queryset.count()} collection(s); see Ingest jobs for progress.",
            messages.SUCCESS,
        )


class TokenTraitInline(admin.TabularInline):
    model = TokenTrait
    extra = 0
    raw_id_fields = ("trait",)
    verbose_name = "trait"


class SalePrices:
    """Price columns of a sale: the native amount trimmed, dollars with separators."""

    def has_add_permission(self, request, obj=None):
        return False  # sales come from ingest only

    @admin.display(description="Price", ordering="amount")
    def price(self, sale):
        return native(sale.amount, sale.symbol)

    @admin.display(description="USD", ordering="usd")
    def price_usd(self, sale):
        return usd(sale.usd)


class SaleInline(SalePrices, admin.TabularInline):
    model = Sale
    extra = 0
    fields = ("timestamp", "price", "price_usd", "tx_hash")
    readonly_fields = fields
    can_delete = False
    show_change_link = True


@admin.register(Token)
class TokenAdmin(admin.ModelAdmin):
    list_display = (
        "__str__",
        "collection",
        "token_id",
        "last_sale",
        "last_sale_in_usd",
        "rarity_rank",
        "ic_rank",
    )
    list_filter = ("collection", "last_sale_symbol")
    search_fields = ("token_id", "name", "owner_address")
    list_select_related = ("collection",)
    raw_id_fields = ("collection",)
    readonly_fields = (
        "image_preview",
        "image_sha256",
        "image_size",
        "image_width",
        "image_height",
        "image_format",
        "rarity_score",
        "rarity_rank",
        "ic_score",
        "ic_rank",
        "trait_count",
        "created_at",
        "updated_at",
    )
    inlines = [TokenTraitInline, SaleInline]

    def has_add_permission(self, request):
        return False  # tokens come from ingest, an archive import or the demo build

    @admin.display(description="Last sale", ordering="last_sale_amount")
    def last_sale(self, token):
        return native(token.last_sale_amount, token.last_sale_symbol)

    @admin.display(description="Last sale (USD)", ordering="last_sale_usd")
    def last_sale_in_usd(self, token):
        return usd(token.last_sale_usd)

    @admin.display(description="Image")
    def image_preview(self, token):
        if not token.image:
            return "-"
        return format_html(
            '<img src="{}" width="128" height="128" style="image-rendering: pixelated" alt="">',
            token.image.url,
        )


@admin.register(Trait)
class TraitAdmin(admin.ModelAdmin):
    list_display = ("trait_type", "value", "collection", "count", "is_excluded", "excluded_reason")
    list_filter = ("is_excluded", "collection", "trait_type")
    search_fields = ("trait_type", "value")
    readonly_fields = ("count", "is_excluded", "excluded_reason", "excluded_at")
    actions = ["exclude_values", "allow_values"]

    @admin.action(description="Exclude (offensive): leave out of training and generation")
    def exclude_values(self, request, queryset):
        """Asks for the reason on a second page, then marks the values excluded."""
        form = ReasonForm(
            request.POST if "apply" in request.POST else None,
            help_text="Required: why these values must not be trained on or generated.",
        )
        if form.is_bound and form.is_valid():
            count = Trait.exclude_values(queryset, form.cleaned_data["reason"])
            self.message_user(request, f"Excluded {count} trait value(s).", messages.SUCCESS)
            return None
        return form_page(
            self,
            request,
            "admin/collections_app/trait/exclude.html",
            "Exclude trait values",
            form,
            traits=queryset,
        )

    @admin.action(description="Allow again (undo an exclusion)")
    def allow_values(self, request, queryset):
        count = Trait.allow_values(queryset)
        self.message_user(request, f"Allowed {count} trait value(s) again.", messages.SUCCESS)


@admin.register(Sale)
class SaleAdmin(SalePrices, admin.ModelAdmin):
    list_display = ("token", "collection", "timestamp", "price", "price_usd")
    list_filter = ("collection", "symbol")
    search_fields = ("token__token_id", "tx_hash", "buyer", "seller")
    date_hierarchy = "timestamp"
    raw_id_fields = ("token", "collection")
    list_select_related = ("token", "collection")


class ProblemFilter(admin.SimpleListFilter):
    title = "problems"
    parameter_name = "problems"

    def lookups(self, request, model_admin):
        return [("yes", "With per-item errors"), ("no", "Clean")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(items_failed__gt=0)
        if self.value() == "no":
            return queryset.filter(items_failed=0)
        return queryset


@admin.register(IngestJob)
class IngestJobAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "kind",
        "collection",
        "status",
        "progress",
        "items_done",
        "items_failed",
        "items_expected",
        "speed",
        "created_at",
        "finished_at",
    )
    list_filter = ("kind", "status", ProblemFilter)
    list_select_related = ("collection",)
    search_fields = ("collection__slug", "task_id", "message")
    actions = ["cancel_jobs", "resume_jobs"]
    fieldsets = (
        (None, {"fields": ("kind", "collection", "status", "message", "results")}),
        (
            "Progress",
            {
                "fields": (
                    "progress",
                    "speed",
                    "items_expected",
                    "items_done",
                    "items_failed",
                    "pages_done",
                    "cursor",
                )
            },
        ),
        ("Per-item errors", {"fields": ("error_table",)}),
        (
            "Run",
            {
                "classes": ("collapse",),
                "fields": (
                    "params",
                    "task_id",
                    "attempts",
                    "created_at",
                    "started_at",
                    "heartbeat_at",
                    "finished_at",
                ),
            },
        ),
    )
    readonly_fields = (
        "kind",
        "collection",
        "status",
        "message",
        "results",
        "progress",
        "speed",
        "items_expected",
        "items_done",
        "items_failed",
        "pages_done",
        "cursor",
        "error_table",
        "params",
        "task_id",
        "attempts",
        "created_at",
        "started_at",
        "heartbeat_at",
        "finished_at",
    )

    def has_add_permission(self, request):
        return False  # jobs start from the Collection admin's buttons and actions

    @admin.display(description="Progress")
    def progress(self, job):
        percent = job.percent
        if percent is None:
            return "-" if not job.is_active else f"{job.items_done + job.items_failed} so far"
        return format_html(
            '<progress value="{}" max="100" style="width: 8em"></progress> {}%',
            f"{percent:.1f}",
            f"{percent:.1f}",
        )

    @admin.display(description="Rate")
    def speed(self, job):
        rate = job.rate
        return f"{rate:.1f} tokens/s" if rate else "-"

    @admin.display(description="Results")
    def results(self, job):
        if not job.result_file:
            return "-"
        images = job.result_file.name
        metadata = images.replace("_archive.zip", "_metadata_archive.zip")
        links = [
            (default_storage.url(name), name.rsplit("/", 1)[-1]) for name in (images, metadata)
        ]
        return format_html_join(" · ", '<a href="{}">{}</a>', links)

    @admin.display(description="Errors")
    def error_table(self, job):
        if not job.errors:
            return "None"
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (e.get("item", "?"), e.get("reason", ""), "yes" if e.get("imported") else "no")
                for e in job.errors[:1000]
            ),
        )
        more = len(job.errors) - 1000
        note = format_html("<p>… and {} more.</p>", more) if more > 0 else ""
        return format_html(
            "<table><thead><tr><th>Item</th><th>Reason</th><th>Stored anyway</th></tr></thead>"
            "<tbody>{}</tbody></table>{}",
            rows,
            note,
        )

    @admin.action(description="Cancel (stops after the current batch)")
    def cancel_jobs(self, request, queryset):
        count = queryset.filter(status__in=IngestJob.ACTIVE).update(
            status=IngestJob.Status.CANCELLED, finished_at=timezone.now()
        )
        self.message_user(request, f"{count} job(s) cancelled.")

    @admin.action(description="Resume (continue from the saved cursor)")
    def resume_jobs(self, request, queryset):
        resumed = sum(launch.queue_resume(job) for job in queryset)
        self.message_user(request, f"{resumed} job(s) sent to the workers again.")


@admin.register(TrainingSet)
class TrainingSetAdmin(admin.ModelAdmin):
    list_display = ("name", "collection", "token_count", "share", "created_at")
    list_filter = ("collection",)
    search_fields = ("name", "collection__slug")
    readonly_fields = (
        "collection",
        "filters",
        "token_count",
        "stats_comparison",
        "data_version",
        "created_at",
    )
    exclude = ("tokens", "stats", "filter_spec")
    actions = ["train_gan"]

    # --- Training pipeline (gan_app): start a run from the chosen set ---
    @admin.action(description="Train a GAN on this training set")
    def train_gan(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Choose exactly one training set.", messages.WARNING)
            return None
        start = reverse("admin:gan_app_trainingrun_start")
        return redirect(f"{start}?training_set={queryset.get().pk}")

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("build/", view(self.build_view), name="collections_app_trainingset_build"),
            # The build page asks these as the admin changes the collection and the filters.
            path(
                "build/preview/",
                view(self.preview_view),
                name="collections_app_trainingset_preview",
            ),
            path(
                "build/traits/",
                view(self.traits_view),
                name="collections_app_trainingset_traits",
            ),
            *super().get_urls(),
        ]

    def add_view(self, request, form_url="", extra_context=None):
        # A training set is only ever built from filters, never typed in by hand.
        return redirect("admin:collections_app_trainingset_build")

    def build_view(self, request):
        """The build form; its Preview button posts it back with the count and thumbnails."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        previewing = "_preview" in request.POST
        initial = {"collection": request.GET.get("collection")}
        form = TrainingSetBuildForm(request.POST or None, initial=initial, preview=previewing)
        if request.method == "POST" and not previewing and form.is_valid():
            data = form.cleaned_data
            try:
                training_set, warnings = build_training_set(
                    data["collection"], data["name"], data["spec"]
                )
            except SubsetError as exc:
                form.add_error(None, sentence(str(exc)))
            else:
                self.message_user(
                    request,
                    f"Built {training_set}: {training_set.token_count} tokens.",
                    messages.SUCCESS,
                )
                for warning in warnings:
                    self.message_user(request, warning, messages.WARNING)
                return redirect(
                    reverse("admin:collections_app_trainingset_change", args=[training_set.pk])
                )
        template = "admin/collections_app/trainingset/build.html"
        return form_page(
            self,
            request,
            template,
            "Build a training set",
            form,
            picker=form.trait_picker(),
            preview=self._preview(form) if previewing else None,
        )

    def preview_view(self, request):
        """The preview for the posted filters as JSON (with its HTML), errors as sentences."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        preview = self._preview(TrainingSetBuildForm(request.POST, preview=True))
        html = render_to_string(
            "admin/collections_app/trainingset/_preview.html", {"preview": preview}, request
        )
        return JsonResponse({**preview, "ok": not preview["errors"], "html": html})

    def traits_view(self, request):
        """The trait picker of ``?collection=<pk>`` as JSON (with its HTML)."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        picker = TrainingSetBuildForm(
            initial={"collection": request.GET.get("collection")}
        ).trait_picker()
        html = render_to_string(
            "admin/collections_app/trainingset/_trait_picker.html", {"picker": picker}, request
        )
        data = {"collection": None, "groups": [], "left_out": 0}
        if picker is not None:
            data = {**picker, "collection": picker["collection"].pk}
            del data["unknown"]
        return JsonResponse({**data, "html": html})

    @staticmethod
    def _preview(form) -> dict:
        """What the posted filters select, or why they cannot be applied, in sentences."""
        empty = {"count": None, "total": None, "funnel": [], "warnings": [], "thumbnails": []}
        if not form.is_valid():
            return {**empty, "errors": error_sentences(form)}
        data = form.cleaned_data
        try:
            result = subsets.preview(data["collection"], data["spec"])
        except SubsetError as exc:
            return {**empty, "errors": [sentence(str(exc))]}
        return {
            "errors": [],
            "count": result.count,
            "total": result.total,
            "funnel": result.funnel,
            "warnings": result.warnings,
            "thumbnails": [
                {
                    "token_id": token.token_id,
                    "name": token.name or f"#{token.token_id}",
                    "url": token.image.url if token.image else None,
                }
                for token in result.thumbnails
            ],
        }

    @admin.display(description="Filter spec")
    def filters(self, obj):
        return json_table(obj.filter_spec)

    @admin.display(description="Share of collection")
    def share(self, obj):
        share = (obj.stats.get("subset") or {}).get("share_of_collection")
        return f"{100 * share:.1f}%" if share is not None else "—"

    @admin.display(description="Subset vs collection")
    def stats_comparison(self, obj):
        subset, whole = obj.stats.get("subset") or {}, obj.stats.get("collection") or {}
        rows = [
            ("Tokens", subset.get("tokens"), whole.get("tokens")),
            ("Sold tokens", subset.get("sold_tokens"), whole.get("sold_tokens")),
        ]
        for key in ("median", "mean", "min", "max"):
            rows.append(
                (
                    f"Price USD, {key}",
                    usd((subset.get("price_usd") or {}).get(key)),
                    usd((whole.get("price_usd") or {}).get(key)),
                )
            )
        for key in ("median", "mean"):
            rows.append(
                (
                    f"Rarity score, {key}",
                    (subset.get("rarity_score") or {}).get(key, "—"),
                    (whole.get("rarity_score") or {}).get(key, "—"),
                )
            )
        body = format_html_join("", "<tr><th>{}</th><td>{}</td><td>{}</td></tr>", rows)
        funnel = format_html_join(
            "",
            "<li>{}: {}</li>",
            ((s["step"], s["remaining"]) for s in obj.stats.get("funnel", [])),
        )
        warnings = format_html_join(
            "", "<li>{}</li>", ((w,) for w in obj.stats.get("warnings", []))
        )
        return format_html(
            "<table><thead><tr><th></th><th>Subset</th><th>Collection</th></tr></thead>"
            "<tbody>{}</tbody></table><p>Filters, in order:</p><ol>{}</ol>{}",
            body,
            funnel,
            format_html("<p>Warnings:</p><ul>{}</ul>", warnings) if warnings else "",
        )
