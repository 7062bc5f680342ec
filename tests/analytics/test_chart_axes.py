"""Chart axes stay readable: prices as $ labels on log axes, and a few extreme sales do not
squash the rarity scatter into a line."""

import math

from collections_app.analytics import charts


def scatter(prices):
    n = len(prices)
    return {
        "x": [float(i) for i in range(n)],
        "y": [math.log10(p) for p in prices],
        "token_id": [str(i) for i in range(n)],
        "name": [f"#{i}" for i in range(n)],
        "usd": [f"{p:,.2f}" for p in prices],
    }


def test_it_clips_the_rarity_scatter_to_the_bulk_of_the_prices_and_marks_outliers():
    prices = [100 + i for i in range(200)] + [50_000_000, 0.01]
    fig = charts.rarity_scatter(scatter(prices))

    low, high = fig.layout.yaxis.range
    symbols = list(fig.data[0].marker.symbol)
    assert 10**high < 3_000 and 10**low > 20, "the axis spans the usual prices, not the extremes"
    assert symbols[-2] == "triangle-up" and symbols[-1] == "triangle-down"
    assert symbols[:-2] == ["circle"] * 200
    assert fig.layout.meta["outliers"] == 2
    assert "beyond the axis" in fig.layout.annotations[0].text


def test_it_keeps_every_point_on_the_axis_without_outliers():
    fig = charts.rarity_scatter(scatter([100 + i for i in range(50)]))

    assert set(fig.data[0].marker.symbol) == {"circle"}
    assert not fig.layout.annotations


def test_it_labels_the_median_price_log_axis_in_dollars():
    sales = {
        "period": "month",
        "rows": [
            {"period": f"2024-{m:02d}", "sales": 3, "median_usd": usd}
            for m, usd in enumerate([120.0, 950.0, 4_000.0, 31_000.0], start=1)
        ],
    }
    axis = charts.sales_chart(sales).layout.yaxis2

    assert axis.type == "log"
    assert all(t.startswith("$") for t in axis.ticktext)
    assert "$1k" in axis.ticktext and "$10k" in axis.ticktext
    assert [round(math.log10(v), 3) for v in axis.tickvals][:1] == [2.0]
