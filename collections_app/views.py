from django.core.paginator import Paginator
from django.db.models import Q
from django.db.models.fields.json import KeyTransform
from django.shortcuts import get_object_or_404, render
from django.urls import reverse

from .charts import compare_figure
from .forms import TokenFilterForm
from .models import Collection, Token

TOKENS_PER_PAGE = 48
TRAIT_TABLE_MAX = 400  # rows; beyond this the table asks for a search
CARD_FIELDS = (
    "collection_id",
    "token_id",
    "name",
    "image",
    "rarity_rank",
    "ic_rank",
    "last_sale_amount",
    "last_sale_symbol",
    "last_sale_usd",
)


def home(request):
    collections = (
        Collection.objects.filter(is_public=True)
        .annotate(summary=KeyTransform("summary", "analytics"))
        .defer("analytics")
        .order_by("name")
    )
    return render(request, "home.html", {"collections": collections})


def detail(request, slug):
    collection = get_object_or_404(Collection, slug=slug, is_public=True)
    trait_q = request.GET.get("trait_q", "").strip()
    traits = collection.traits.filter(count__gt=0).order_by("trait_type", "-count", "value")
    if trait_q:
        traits = traits.filter(Q(trait_type__icontains=trait_q) | Q(value__icontains=trait_q))
    traits = list(traits[: TRAIT_TABLE_MAX + 1])
    form = TokenFilterForm(
        request.GET,
        collection,
        trait_choices=[(t.pk, f"{t.trait_type}: {t.value}") for t in traits[:TRAIT_TABLE_MAX]],
    )
    selected = form.selected_traits()
    tokens = form.apply(collection.tokens.only(*CARD_FIELDS), selected)
    page = Paginator(tokens, TOKENS_PER_PAGE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "collections/detail.html",
        {
            "collection": collection,
            "analytics": collection.analytics or {},
            "stale": bool(collection.analytics) and not collection.analytics_fresh,
            "traits": traits[:TRAIT_TABLE_MAX],
            "traits_truncated": len(traits) > TRAIT_TABLE_MAX,
            "trait_q": trait_q,
            "form": form,
            "selected_traits": selected,
            "page": page,
            "query": query.urlencode(),
            "published_generators": list(collection.generators.filter(is_published=True)),
            "token_url_template": reverse("collections:token", args=[slug, "__id__"]),
        },
    )


def token(request, slug, token_id):
    token = get_object_or_404(
        Token.objects.select_related("collection").defer("collection__analytics"),
        collection__slug=slug,
        collection__is_public=True,
        token_id=token_id,
    )
    collection = token.collection
    # Total and per-type missing counts come from the cache, not a recount.
    cached = Collection.objects.filter(pk=collection.pk).values_list(
        KeyTransform("summary", "analytics"), KeyTransform("traits", "analytics")
    )
    summary, trait_stats = cached.first() or (None, None)
    total = (summary or {}).get("tokens") or collection.tokens.count()
    traits = list(token.traits.order_by("trait_type", "value"))
    held_types = {t.trait_type for t in traits}
    missing = [
        t
        for t in (trait_stats or {}).get("types", [])
        if t["trait_type"] not in held_types and t["tokens_missing"]
    ]
    return render(
        request,
        "collections/token.html",
        {
            "collection": collection,
            "token": token,
            "traits": [(t, t.count / total if total else None) for t in traits],
            "missing_types": missing,
            "total": total,
            "sales": list(token.sales.order_by("-timestamp")[:100]),
        },
    )


def compare(request):
    collections = list(
        Collection.objects.filter(is_public=True)
        .annotate(
            summary=KeyTransform("summary", "analytics"),
            prices=KeyTransform("prices", "analytics"),
        )
        .defer("analytics")
        .order_by("name")
    )
    figure = compare_figure(
        [
            {"name": c.name, "sample_log10": (c.prices or {}).get("sample_log10") or []}
            for c in collections
            if (c.prices or {}).get("currency") == "USD"
        ]
    )
    return render(
        request, "collections/compare.html", {"collections": collections, "figure": figure}
    )
