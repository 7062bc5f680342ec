"""What the comparison page shows: a fabricated collection beside its source, computed from the
catalog rows (so it is right before the analytics job has run): trait frequencies (the
collection page's bar charts), the rarity score distribution and a sample of each.
"""

import plotly.graph_objects as go
from django.db.models import Count

from collections_app.analytics.charts import ACCENT, ACCENT_2, _layout, _to_dict, trait_bars
from collections_app.analytics.rarity import TraitPairs, score_collection
from collections_app.models import Collection, TokenTrait

TOP_TRAITS = 12
SAMPLE = 12


def trait_rows(collection: Collection, limit: int = TOP_TRAITS) -> list[dict]:
    """The most common traits as ``trait_bars`` takes them: trait_type, value, count, frequency."""
    total = collection.tokens.count()
    rows = (
        collection.traits.annotate(held=Count("tokens"))
        .filter(held__gt=0)
        .order_by("-held", "trait_type", "value")
        .values("trait_type", "value", "held")[:limit]
    )
    return [
        {
            "trait_type": r["trait_type"],
            "value": r["value"],
            "count": r["held"],
            "frequency": r["held"] / total if total else 0.0,
        }
        for r in rows
    ]


def rarity_scores(collection: Collection) -> list[float]:
    """rarity.tools scores of every token within its own collection."""
    tokens = list(collection.tokens.values_list("pk", flat=True))
    if not tokens:
        return []
    pairs = TraitPairs.from_records(
        tokens,
        TokenTrait.objects.filter(token__collection=collection).values_list(
            "token_id", "trait__trait_type", "trait__value"
        ),
    )
    return [float(s) for s in score_collection(pairs)["rarity_score"]]


def rarity_histogram(series: list[tuple[str, list[float]]]) -> dict | None:
    """Overlaid histograms of rarity scores, one per collection (shares, so sizes compare)."""
    shown = [(name, scores) for name, scores in series if scores]
    if not shown:
        return None
    fig = go.Figure()
    for (name, scores), colour in zip(shown, (ACCENT, ACCENT_2), strict=False):
        fig.add_trace(
            go.Histogram(
                x=scores,
                name=name,
                histnorm="percent",
                opacity=0.6,
                marker={"color": colour},
                hovertemplate="score %{x}<br>%{y:.1f}% of tokens<extra>" + name + "</extra>",
            )
        )
    _layout(fig, xaxis_title="Rarity score (rarity.tools)", yaxis_title="% of tokens")
    fig.update_layout(barmode="overlay", showlegend=True)
    return _to_dict(fig)


def sample(collection: Collection, size: int = SAMPLE) -> list:
    return list(collection.tokens.exclude(image="").order_by("token_number", "token_id")[:size])


def side_by_side(fabricated: Collection) -> dict:
    source = fabricated.source_collection
    sides = [s for s in (source, fabricated) if s is not None]
    return {
        "sides": [
            {
                "collection": c,
                "tokens": c.tokens.count(),
                "traits": _to_dict(trait_bars(trait_rows(c), f"Most common traits: {c.name}")),
                "sample": sample(c),
                "key": "source" if c is source else "fabricated",
            }
            for c in sides
        ],
        "rarity": rarity_histogram([(c.name, rarity_scores(c)) for c in sides]),
    }
