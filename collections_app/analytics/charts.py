"""Plotly figures for the collection and compare pages.

Collection figures are built when analytics are computed and cached with them, so a page only
hands stored JSON to plotly.js. Layouts are plain (template "none"); static/js/charts.js adapts
colours to the page's light or dark theme.
"""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import plotly.graph_objects as go

ACCENT = "#6a4cff"
ACCENT_2 = "#ff7bd5"
PALETTE = ["#6a4cff", "#e0569f", "#1f9e89", "#e8a33d", "#3f8efc", "#d9534f", "#7a7f8c", "#9c6ade"]
FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif'


def collection_figures(analytics: dict) -> dict:
    """Figure dicts by name; None where the data for a chart is missing."""
    traits = analytics["traits"]
    prices = analytics["prices"]
    return {
        "price_histogram": _to_dict(price_histogram(prices)),
        "rare_traits": _to_dict(trait_bars(traits["rarest"], "Rarest traits", rarest=True)),
        "common_traits": _to_dict(trait_bars(traits["most_common"], "Most common traits")),
        "rarity_vs_price": _to_dict(rarity_scatter(analytics["scatter"])),
        "sales_over_time": _to_dict(sales_chart(analytics["sales_over_time"])),
    }


def price_histogram(prices: dict) -> go.Figure | None:
    histogram = prices.get("histogram")
    if not histogram:
        return None
    edges, counts = histogram["edges"], histogram["counts"]
    currency = prices["currency"]
    centers = [(a + b) / 2 for a, b in itertools.pairwise(edges)]
    ranges = [
        [money(10**a, currency), money(10**b, currency)] for a, b in itertools.pairwise(edges)
    ]
    fig = go.Figure(
        go.Bar(
            x=centers,
            y=counts,
            width=[b - a for a, b in itertools.pairwise(edges)],
            customdata=ranges,
            marker={"color": ACCENT, "line": {"width": 0}},
            hovertemplate="%{customdata[0]} to %{customdata[1]}<br>%{y} tokens<extra></extra>",
        )
    )
    _layout(fig, xaxis_title=f"Last sale price ({currency}, log scale)", yaxis_title="Tokens")
    fig.update_xaxes(**log_ticks(edges[0], edges[-1], currency))
    return fig


def trait_bars(rows: list[dict], title: str, rarest: bool = False) -> go.Figure | None:
    if not rows:
        return None
    labels = [f"{r['trait_type']}: {r['value']}" for r in rows]
    fig = go.Figure(
        go.Bar(
            x=[r["count"] for r in rows][::-1],
            y=labels[::-1],
            orientation="h",
            customdata=[[f"{100 * r['frequency']:.2f}%"] for r in rows][::-1],
            marker={"color": ACCENT_2 if rarest else ACCENT},
            hovertemplate="%{y}<br>%{x} tokens (%{customdata[0]})<extra></extra>",
        )
    )
    _layout(fig, xaxis_title="Tokens with the trait", height=max(320, 22 * len(rows) + 80))
    fig.update_yaxes(automargin=True, tickfont={"size": 11})
    fig.update_layout(meta={"title": title})
    return fig


def rarity_scatter(scatter: dict) -> go.Figure | None:
    if not scatter or not scatter["x"]:
        return None
    # numpy arrays take plotly's fast validation path (lists are checked item by item).
    customdata = np.array([scatter["token_id"], scatter["name"], scatter["usd"]], dtype=object).T
    y = np.asarray(scatter["y"], dtype=float)
    low, high = clip_range(y)
    shown = np.clip(y, low, high)
    outlier = shown != y
    fig = go.Figure(
        go.Scatter(
            x=np.asarray(scatter["x"], dtype=float),
            y=shown,
            mode="markers",
            customdata=customdata,
            marker={
                "color": np.where(outlier, ACCENT_2, ACCENT),
                "size": np.where(outlier, 9, 7),
                # Points beyond the axis sit on its edge as arrows pointing the way they went.
                "symbol": np.where(
                    y > high, "triangle-up", np.where(y < low, "triangle-down", "circle")
                ),
                "opacity": 0.6,
                "line": {"width": 0},
            },
            hovertemplate=(
                "<b>%{customdata[1]}</b><br>rarity score %{x:.1f}<br>$%{customdata[2]}"
                "<extra>click to open</extra>"
            ),
        )
    )
    _layout(fig, xaxis_title="Rarity score (rarity.tools)", yaxis_title="Last sale (USD, log)")
    pad = 0.04 * max(high - low, 0.1)
    fig.update_yaxes(range=[low - pad, high + pad], **log_ticks(low, high, "USD"))
    if outlier.any():
        fig.update_layout(meta={"outliers": int(outlier.sum())})
        fig.add_annotation(
            text=f"▲▼ {int(outlier.sum())} prices beyond the axis, drawn at its edge",
            xref="paper",
            yref="paper",
            x=1,
            y=1.02,
            xanchor="right",
            yanchor="bottom",
            showarrow=False,
            font={"size": 11},
        )
    return fig


def clip_range(values: np.ndarray, tail: float = 1.0, slack: float = 0.5) -> tuple[float, float]:
    """The 1st to 99th percentile of ``values`` (log10 prices), widened by ``slack`` decades
    and never past the data: a few extreme sales must not squash the rest of the scatter into
    a line (the extremes are still drawn, on the axis edge)."""
    low, high = np.percentile(values, [tail, 100 - tail])
    low = max(float(values.min()), low - slack)
    high = min(float(values.max()), high + slack)
    return low, max(high, low + 0.1)


def sales_chart(sales: dict | None) -> go.Figure | None:
    if not sales or not sales["rows"]:
        return None
    rows = sales["rows"]
    periods = [r["period"] for r in rows]
    fig = go.Figure(
        go.Bar(
            x=periods,
            y=[r["sales"] for r in rows],
            name="Sales",
            marker={"color": ACCENT},
            hovertemplate="%{x}<br>%{y} sales<extra></extra>",
        )
    )
    medians = [r["median_usd"] for r in rows]
    if any(m is not None for m in medians):
        fig.add_trace(
            go.Scatter(
                x=periods,
                y=medians,
                name="Median price (USD)",
                yaxis="y2",
                mode="lines+markers",
                connectgaps=True,
                line={"color": ACCENT_2, "width": 2},
                hovertemplate="%{x}<br>median $%{y:,.2f}<extra></extra>",
            )
        )
        fig.update_layout(
            yaxis2={
                "title": {"text": "Median price (USD)"},
                "overlaying": "y",
                "side": "right",
                "type": "log",
                "showgrid": False,
                "automargin": True,
                **linear_log_ticks([m for m in medians if m]),
            }
        )
    _layout(fig, xaxis_title=f"Sales per {sales['period']}", yaxis_title="Sales")
    most = max(r["sales"] for r in rows)
    fig.update_layout(yaxis={"rangemode": "tozero", "tickformat": ",d"})
    if most < 10:  # whole sales only: no gridlines at 0.2 of a sale
        fig.update_layout(yaxis={"dtick": 1})
    fig.update_layout(
        showlegend=True,
        legend={"orientation": "h", "y": 1.12, "x": 0},
        bargap=0.15,
        margin={"r": 70},
    )
    return fig


def compare_figure(collections: list[dict]) -> dict | None:
    """Strip plot of log10 USD last-sale prices, one column per collection.

    ``collections``: dicts with name and sample_log10 (from each collection's cache).
    """
    shown = [c for c in collections if c["sample_log10"]]
    if not shown:
        return None
    fig = go.Figure()
    for i, c in enumerate(shown):
        fig.add_trace(
            go.Box(
                y=c["sample_log10"],
                name=c["name"],
                boxpoints="all",
                jitter=0.6,
                pointpos=0,
                fillcolor="rgba(0,0,0,0)",
                line={"color": "rgba(0,0,0,0)"},
                # A box's points take its line colour, which is hidden here: colour them apart.
                marker={"size": 4, "opacity": 0.6, "color": PALETTE[i % len(PALETTE)]},
                hoveron="points",
                text=[money(10**v, "USD") for v in c["sample_log10"]],
                hovertemplate="%{x}<br>%{text}<extra></extra>",
            )
        )
    values = [v for c in shown for v in c["sample_log10"]]
    _layout(fig, yaxis_title="Last sale (USD, log scale)", height=440)
    fig.update_layout(showlegend=False)
    fig.update_yaxes(**log_ticks(min(values), max(values), "USD"))
    return _to_dict(fig)


def log_ticks(low: float, high: float, currency: str) -> dict:
    """Axis ticks labelled as prices, for an axis of log10 values.

    Powers of ten, plus 2x and 5x steps when the axis spans under three decades.
    """
    first, last = math.floor(low), math.ceil(high)
    if last - first < 1:
        last = first + 1
    if last - first < 3:
        multiples = (1, 2, 5)
        values = [e + math.log10(m) for e in range(first, last + 1) for m in multiples]
        values = [v for v in values if low - 0.05 <= v <= high + 0.05] or [first, last]
    else:
        step = max(1, math.ceil((last - first) / 8))
        values = list(range(first, last + 1, step))
    return {"tickvals": values, "ticktext": [money(10**v, currency) for v in values]}


def linear_log_ticks(prices: list[float]) -> dict:
    """log_ticks for a plotly log axis, whose tick values are prices rather than their log10
    (plotly's own labels there read "2", "5" between the powers of ten)."""
    if not prices:
        return {}
    ticks = log_ticks(math.log10(min(prices)), math.log10(max(prices)), "USD")
    return {**ticks, "tickvals": [10**v for v in ticks["tickvals"]]}


def money(amount: float, currency: str) -> str:
    """Compact price label: $1.5k, $2M, 0.01 ETH."""
    for threshold, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(amount) >= threshold:
            text = f"{amount / threshold:.3g}{suffix}"
            break
    else:
        text = f"{amount:.3g}" if amount >= 0.001 or amount == 0 else f"{amount:.1e}"
    return f"${text}" if currency == "USD" else f"{text} {currency}"


def _layout(fig: go.Figure, xaxis_title=None, yaxis_title=None, height=360) -> None:
    fig.update_layout(
        template="none",
        height=height,
        margin={"l": 60, "r": 20, "t": 20, "b": 56},
        font={"family": FONT, "size": 13},
        paper_bgcolor="rgba(0,0,0,0)",
        plot_bgcolor="rgba(0,0,0,0)",
        hoverlabel={"font": {"family": FONT}},
        showlegend=False,
        xaxis={"title": {"text": xaxis_title} if xaxis_title else None, "automargin": True},
        yaxis={"title": {"text": yaxis_title} if yaxis_title else None, "automargin": True},
    )


def _to_dict(fig: go.Figure | None) -> dict | None:
    # to_json converts numpy arrays (as typed arrays) and validates once, at compute time.
    return json.loads(fig.to_json()) if fig is not None else None
