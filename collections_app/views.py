from django.db.models.fields.json import KeyTransform
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse

from nftsite.parsing import IntegerParseError, parse_ascii_int

from . import browse, hooks
from .analytics.charts import compare_figure
from .forms import TokenFilterForm
from .models import Collection, Token
from .traits import is_no_trait


def home(request):
    collections = (
        Collection.objects.filter(is_public=True)
        .annotate(summary=KeyTransform("summary", "analytics"))
        .defer("analytics")
        .order_by("name")
    )
    context = {"collections": collections}
    # Published generators, training progress and recent images: added by gan_app's hook.
    for add_to in hooks.HOME_PAGE:
        context.update(add_to(context["collections"]))
    return render(request, "home.html", context)


def detail(request, slug):
    collection = get_object_or_404(Collection, slug=slug, is_public=True)
    cached = collection.analytics or {}
    total = (cached.get("summary") or {}).get("tokens")
    # PostgreSQL text refuses NUL: a search for one would be a 500, not "no match".
    trait_q = request.GET.get("trait_q", "").replace("\x00", "").strip()
    traits, truncated = browse.trait_rows(collection, trait_q, total, request.GET)
    form = TokenFilterForm(request.GET, collection)
    selected = form.selected_traits()
    tokens = form.apply(collection.tokens.only(*browse.CARD_FIELDS), selected, total)
    page = browse.paginate(collection, tokens, form, selected, request.GET.get("page"))
    return render(
        request,
        "collections/detail.html",
        {
            "collection": collection,
            "analytics": cached,
            "stale": bool(cached) and not collection.analytics_fresh,
            "traits": traits,
            "trait_table_body": browse.trait_table_body(traits),
            "traits_truncated": truncated,
            "trait_q": trait_q,
            "trait_sidebar": browse.trait_sidebar(traits, selected),
            "form": form,
            "selected_traits": selected,
            "active_filters": browse.active_filters(request.GET, form, selected),
            "filter_problems": browse.filter_problems(request.GET, form, selected, page),
            "page": page,
            "cards": browse.token_cards(page.object_list, slug),
            "published_generators": list(
                collection.generators.filter(is_published=True, is_listed=True)
            ),
            "token_url_template": reverse("collections:token", args=[slug, "__id__"]),
        },
    )


def token(request, slug, token_id):
    try:  # ASCII digits only ("%00" reached PostgreSQL as a NUL: a 500); "007" -> "7"
        canonical = str(parse_ascii_int(token_id, name="token id"))
    except IntegerParseError:
        raise Http404("no such token") from None
    if canonical != token_id:
        return redirect("collections:token", slug=slug, token_id=canonical, permanent=True)
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
    # The trait count is scored as a trait too (rarity.py): how many tokens share this one's.
    real = sum(1 for t in traits if not is_no_trait(t.value))
    same_count = next(
        (
            c["tokens"]
            for c in (trait_stats or {}).get("trait_counts", [])
            if c["trait_count"] == real
        ),
        None,
    )
    return render(
        request,
        "collections/token.html",
        {
            "collection": collection,
            "token": token,
            "traits": [(t, t.count / total if total else None) for t in traits],
            "missing_types": missing,
            "trait_count": real,
            "trait_count_tokens": same_count,
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
