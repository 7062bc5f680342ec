from django.contrib import admin

from .models import Collection, IngestJob, Sale, Token, TokenTrait, TrainingSet, Trait


@admin.register(Collection)
class CollectionAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "source", "chain", "supply", "data_version", "is_public")
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
    list_display = ("name", "collection", "token_count", "created_at")
    list_filter = ("collection",)
    search_fields = ("name", "collection__slug")
    readonly_fields = ("token_count", "stats", "data_version", "created_at")
    filter_horizontal = ()
    raw_id_fields = ("collection",)
    exclude = ("tokens",)
