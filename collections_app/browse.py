"""What the collection page shows, prepared in Python.

At 100,000 tokens the page must stay well under 150 ms, and Django templates cost microseconds
per node: long lists (trait table, trait options, token cards) are prepared here, once.
"""

from functools import cached_property
from html import escape
from itertools import groupby
from urllib.parse import quote

from django.core.paginator import Paginator
from django.db.models import Q
from django.urls import reverse
from django.utils.safestring import mark_safe

from .templatetags.analytics_tags import native, pct, usd

TOKENS_PER_PAGE = 48
TRAIT_TABLE_MAX = 400  # rows; beyond this the table asks for a search
CARD_FIELDS = (
    "collection_id",
    "token_id",
    "name",
    "image",
    "rarity_rank",
    "last_sale_amount",
    "last_sale_symbol",
    "last_sale_usd",
)


class TokenPaginator(Paginator):
    """Pages of the token grid without the two costs that grow with the collection.

    - ``known_count``: when the number of matches is known exactly (see
      ``TokenFilterForm.exact_count``), no COUNT(*) over the table.
    - ``rank_field``: with no filter, fresh analytics and a rank sort, deep pages seek through
      the rank index.
      Ranks are competition ranks over every token, so exactly ``r - 1`` tokens rank before
      the first token of rank ``r``: page offset ``o`` starts in the tie group of the largest
      rank ``r <= o + 1``, ``o - (r - 1)`` tokens into it. No OFFSET over tens of thousands.
    """

    SEEK_FROM = 480  # offsets below this are cheap enough as they are

    def __init__(self, object_list, per_page, known_count=None, rank_field=None):
        super().__init__(object_list, per_page)
        self.known_count = known_count
        self.rank_field = rank_field if known_count is not None else None

    @cached_property
    def count(self):
        return self.known_count if self.known_count is not None else super().count

    def page(self, number):
        number = self.validate_number(number)
        offset = (number - 1) * self.per_page
        if self.rank_field is None or offset < self.SEEK_FROM:
            return super().page(number)
        rank = (
            self.object_list.filter(**{f"{self.rank_field}__lte": offset + 1})
            .order_by(f"-{self.rank_field}")
            .values_list(self.rank_field, flat=True)
            .first()
        )
        if rank is None:
            return super().page(number)
        start = offset - (rank - 1)
        rest = self.object_list.filter(**{f"{self.rank_field}__gte": rank})
        return self._get_page(rest[start : start + self.per_page], number, self)


def paginate(collection, tokens, form, selected_traits, number):
    """The requested page of the (filtered, ordered) token grid."""
    exact = None
    if collection.analytics_fresh:
        cached = collection.analytics
        types = (cached.get("traits") or {}).get("types") or []
        multi = [t["trait_type"] for t in types if t.get("multi_valued")]
        total = (cached.get("summary") or {}).get("tokens")
        exact = form.exact_count(total, selected_traits, multi)
    rank_field = None
    if not form.narrows:
        rank_field = {"rarity": "rarity_rank", "openrarity": "ic_rank"}.get(form.ordering)
    paginator = TokenPaginator(tokens, TOKENS_PER_PAGE, exact, rank_field)
    return paginator.get_page(number)


def trait_rows(collection, trait_q, total, query):
    """(rows, truncated): traits for the table with frequency text and a filter link."""
    traits = collection.traits.filter(count__gt=0).order_by("trait_type", "-count", "value")
    if trait_q:
        traits = traits.filter(Q(trait_type__icontains=trait_q) | Q(value__icontains=trait_q))
    traits = list(traits.values_list("pk", "trait_type", "value", "count")[: TRAIT_TABLE_MAX + 1])
    base = query.copy()
    for key in ("page", "trait"):
        base.pop(key, None)
    prefix = "?" + (base.urlencode() + "&" if base else "") + "trait="
    rows = [
        {
            "pk": pk,
            "trait_type": trait_type,
            "value": value,
            "count": count,
            "frequency": pct(count / total) if total else "—",
            "href": f"{prefix}{pk}#tokens",
        }
        for pk, trait_type, value, count in traits[:TRAIT_TABLE_MAX]
    ]
    return rows, len(traits) > TRAIT_TABLE_MAX


def trait_table_body(rows):
    """<tbody> rows of the trait table.

    Hundreds of rows: plain string building with the standard library's escape (the same
    characters as Django's) costs a fraction of template nodes or format_html per cell.
    """
    return mark_safe(  # noqa: S308 (every value below is escaped)
        "".join(
            f"<tr><td>{escape(r['trait_type'])}</td><td>{escape(r['value'])}</td>"
            f'<td class="num">{r["count"]:,}</td><td class="num">{r["frequency"]}</td>'
            f'<td><a href="{escape(r["href"])}">Show tokens</a></td></tr>'
            for r in rows
        )
    )


def trait_sidebar(rows, selected_traits):
    """Checkbox groups of trait values with token counts, one <details> per trait type (open
    when one of its values is ticked), like marketplace collection pages. Ticked traits that
    the capped or searched ``rows`` leave out are listed too, so a filter is never hidden."""
    selected = {t.pk for t in selected_traits}
    listed = {r["pk"] for r in rows}
    extra = [
        {"pk": t.pk, "trait_type": t.trait_type, "value": t.value, "count": t.count}
        for t in selected_traits
        if t.pk not in listed
    ]
    ordered = sorted([*rows, *extra], key=lambda r: r["trait_type"])
    groups = []
    for index, (trait_type, members) in enumerate(groupby(ordered, key=lambda r: r["trait_type"])):
        members = list(members)
        ticked = any(r["pk"] in selected for r in members)
        boxes = "".join(
            f'<li><label><input type="checkbox" name="trait" value="{r["pk"]}"'
            f'{" checked" if r["pk"] in selected else ""}> <span class="trait-value">'
            f'{escape(r["value"])}</span> <span class="trait-count">{r["count"]:,}</span>'
            f"</label></li>"
            for r in members
        )
        groups.append(
            f'<details class="trait-group"{" open" if ticked else ""}>'
            f'<summary id="trait-group-{index}">{escape(trait_type)} '
            f'<span class="trait-count">{len(members)}</span></summary>'
            f'<ul class="trait-options" aria-labelledby="trait-group-{index}">{boxes}</ul>'
            "</details>"
        )
    return mark_safe("".join(groups))  # noqa: S308 (built from escaped values)


def active_filters(query, form, selected_traits):
    """Removable chips for the filters in effect: [{label, href}] (href drops that one)."""
    values = form.values
    chips = [(f"{t.trait_type}: {t.value}", "trait", str(t.pk)) for t in selected_traits]
    labels = {
        "min_usd": lambda v: f"From {usd(v)}",
        "max_usd": lambda v: f"Up to {usd(v)}",
        "max_rank": lambda v: f"Rank up to {v:,}",
        "sold": lambda v: "Sold only",
        "sort": lambda v: f"Sort: {dict(form.fields['sort'].choices).get(v, v)}",
    }
    for key, label in labels.items():
        value = values.get(key)
        if value not in (None, "", False) and not (key == "sort" and value == "rarity"):
            chips.append((label(value), key, None))
    return [{"label": label, "href": _without(query, key, value)} for label, key, value in chips]


def _without(query, key, value=None):
    """``query`` as a link without ``key`` (or only its ``value``), back on page 1."""
    rest = query.copy()
    rest.pop("page", None)
    if value is None:
        rest.pop(key, None)
    else:
        rest.setlist(key, [v for v in rest.getlist(key) if v != value])
    return "?" + rest.urlencode() + "#tokens" if rest else "?#tokens"


def filter_problems(query, form, selected_traits, page):
    """What in the query is not applied, in words: invalid values, unknown traits and a page
    number out of range. Said on the page rather than dropped without a word."""
    problems = []
    for name, errors in form.errors.items():
        field = form.fields[name]
        raw = ", ".join(query.getlist(name))
        problems.append(f"{field.label} “{raw}”: {errors[0]} This filter is not applied.")
    found = {str(t.pk) for t in selected_traits}
    if "trait" not in form.errors:
        unknown = [v for v in query.getlist("trait") if v.strip() and v.strip() not in found]
        if unknown:
            problems.append(
                f"Trait {', '.join(unknown)}: no such trait in this collection, so it is not "
                "applied."
            )
    raw_page = query.get("page", "").strip()
    if raw_page and raw_page != str(page.number):
        problems.append(
            f"There is no page “{raw_page}”: showing page {page.number} of "
            f"{page.paginator.num_pages}."
        )
    return problems


def token_cards(tokens, collection_slug):
    """Card data for a page of tokens: link, label, rank badge and price text."""
    url = reverse("collections:token", args=[collection_slug, "__id__"])
    cards = []
    for token in tokens:
        if token.last_sale_usd is not None:
            price = usd(token.last_sale_usd)
        elif token.last_sale_amount is not None:
            price = native(token.last_sale_amount, token.last_sale_symbol)
        else:
            price = None
        cards.append(
            {
                "href": url.replace("__id__", quote(token.token_id, safe="")),
                "name": token.name or f"#{token.token_id}",
                "token_id": token.token_id,
                "image": token.image.url if token.image else None,
                "rank": token.rarity_rank,
                "price": price,
            }
        )
    return cards
