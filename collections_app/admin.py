from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from .forms import TrainingSetBuildForm
from .models import Collection, IngestJob, Sale, Token, TokenTrait, TrainingSet, Trait
from .subsets import SubsetError, build_training_set


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
    actions = ["recompute_analytics"]
    list_filter = ("source", "chain", "is_public")
    search_fields = ("name", "slug", "contract_address")
    prepopulated_fields = {"slug": ("name",)}
    readonly_fields = (
        "data_version",
        "analytics_version",
        "analytics_computed_at",
        "created_at",
        "updated_at",
    )
    exclude = ("analytics",)

    @admin.display(description="Analytics")
    def analytics_status(self, obj):
        if not obj.analytics:
            return "not computed"
        if obj.analytics_fresh:
            return "fresh"
        return f"stale (v{obj.analytics_version} < v{obj.data_version})"

    @admin.action(description="Recompute analytics (on a worker)")
    def recompute_analytics(self, request, queryset):
        from . import analytics  # the analytics stack loads on use, not with the admin

        for collection in queryset:
            analytics.request(collection, force=True)
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


class SaleInline(admin.TabularInline):
    model = Sale
    extra = 0
    fields = ("timestamp", "amount", "symbol", "usd", "tx_hash")
    readonly_fields = fields
    can_delete = False
    show_change_link = True


@admin.register(Token)
class TokenAdmin(admin.ModelAdmin):
    list_display = (
        "__str__",
        "collection",
        "token_id",
        "last_sale_amount",
        "last_sale_symbol",
        "last_sale_usd",
        "rarity_rank",
        "ic_rank",
    )
    list_filter = ("collection", "last_sale_symbol")
    search_fields = ("token_id", "name", "owner_address")
    list_select_related = ("collection",)
    raw_id_fields = ("collection",)
    readonly_fields = (
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


@admin.register(Trait)
class TraitAdmin(admin.ModelAdmin):
    list_display = ("trait_type", "value", "collection", "count")
    list_filter = ("collection", "trait_type")
    search_fields = ("trait_type", "value")
    readonly_fields = ("count",)


@admin.register(Sale)
class SaleAdmin(admin.ModelAdmin):
    list_display = ("token", "collection", "timestamp", "amount", "symbol", "usd")
    list_filter = ("collection", "symbol")
    search_fields = ("token__token_id", "tx_hash", "buyer", "seller")
    date_hierarchy = "timestamp"
    raw_id_fields = ("token", "collection")
    list_select_related = ("token", "collection")


@admin.register(IngestJob)
class IngestJobAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "kind",
        "collection",
        "status",
        "items_done",
        "items_failed",
        "items_expected",
        "created_at",
        "finished_at",
    )
    list_filter = ("kind", "status")
    search_fields = ("collection__slug", "task_id", "message")
    readonly_fields = (
        "status",
        "cursor",
        "pages_done",
        "items_expected",
        "items_done",
        "items_failed",
        "errors",
        "message",
        "task_id",
        "attempts",
        "created_at",
        "started_at",
        "heartbeat_at",
        "finished_at",
    )


@admin.register(TrainingSet)
class TrainingSetAdmin(admin.ModelAdmin):
    list_display = ("name", "collection", "token_count", "share", "created_at")
    list_filter = ("collection",)
    search_fields = ("name", "collection__slug")
    readonly_fields = (
        "collection",
        "filter_spec",
        "token_count",
        "stats_comparison",
        "data_version",
        "created_at",
    )
    exclude = ("tokens", "stats")

    def get_urls(self):
        build = path(
            "build/",
            self.admin_site.admin_view(self.build_view),
            name="collections_app_trainingset_build",
        )
        return [build, *super().get_urls()]

    def add_view(self, request, form_url="", extra_context=None):
        # A training set is only ever built from filters, never typed in by hand.
        return redirect("admin:collections_app_trainingset_build")

    def build_view(self, request):
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = TrainingSetBuildForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                training_set, warnings = build_training_set(
                    data["collection"], data["name"], data["spec"]
                )
            except SubsetError as exc:
                form.add_error(None, str(exc))
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
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Build a training set",
            "form": form,
        }
        return TemplateResponse(request, "admin/collections_app/trainingset/build.html", context)

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
                    (subset.get("price_usd") or {}).get(key, "—"),
                    (whole.get("price_usd") or {}).get(key, "—"),
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
