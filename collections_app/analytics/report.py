"""Analytics, step 4: the report ``manage.py analytics`` prints (JSON or text tables) from the
cached result and the tokens' ranks."""

from __future__ import annotations

from ..models import Collection, Token


def report(collection: Collection, data: dict) -> dict:
    """What ``manage.py analytics --json`` prints: the cache's headline parts and every rank."""
    summary = dict(data["summary"])
    prices = {
        "native": summary.pop("price_native"),
        "usd": summary.pop("price_usd"),
        "sales_volume_usd": summary.pop("sales_volume_usd"),
    }
    ranks = Token.objects.filter(collection=collection).order_by("token_number", "token_id")
    return {
        "collection": collection.slug,
        "name": collection.name,
        "data_version": data["data_version"],
        "computed_at": data["computed_at"],
        "summary": summary,
        "prices": prices,
        "top_traits": {
            "rarest": data["traits"]["rarest"],
            "most_common": data["traits"]["most_common"],
        },
        "trait_types": data["traits"]["types"],
        "warnings": data["warnings"],
        "ranks": {
            token_id: {"rarity_rank": rarity_rank, "ic_rank": ic_rank}
            for token_id, rarity_rank, ic_rank in ranks.values_list(
                "token_id", "rarity_rank", "ic_rank"
            )
        },
    }


def format_report(report: dict, top: int = 10) -> str:
    """``report`` as readable text tables."""
    s = report["summary"]
    lines = [
        f"{report['name']} ({report['collection']}), data version {report['data_version']}",
        f"  tokens {s['tokens']}, sold {s['sold_tokens']}, owners {s['owners']}, "
        f"sales recorded {s['sales']}",
        f"  trait types {s['trait_types']}, trait values {s['trait_values']}, "
        f"tokens without traits {s['tokens_without_traits']}",
    ]
    for key, label in (("rarity_score", "rarity.tools"), ("ic_score", "OpenRarity")):
        sp = s["spearman"][key]
        shown = f"{sp['rho']:+.3f} (n={sp['n']})" if sp["rho"] is not None else sp["reason"]
        lines.append(f"  Spearman {label} score vs USD price: {shown}")
    lines += [
        "",
        "Prices",
        f"  {'':10} {'count':>7} {'median':>20} {'mean':>20} {'min':>20} {'max':>20}",
    ]
    rows = [("USD", report["prices"]["usd"]), *list(report["prices"]["native"].items())]
    for label, st in rows:
        if st:
            lines.append(
                f"  {label:10} {st['count']:>7} {st['median']:>20} {st['mean']:>20} "
                f"{st['min']:>20} {st['max']:>20}"
            )
    if not report["prices"]["usd"] and not report["prices"]["native"]:
        lines.append("  no sales")
    for key, label in (("rarest", "Rarest traits"), ("most_common", "Most common traits")):
        lines += ["", label]
        for t in report["top_traits"][key][:top]:
            lines.append(
                f"  {t['trait_type'] + ': ' + t['value']:40.40} {t['count']:>7} "
                f"{100 * t['frequency']:7.2f}%"
            )
    ranked = sorted(
        ((r["rarity_rank"] or 10**12, tid, r) for tid, r in report["ranks"].items()),
        key=lambda item: item[0],
    )
    lines += ["", f"Rarest {min(top, len(ranked))} tokens (all ranks: --json)"]
    lines.append(f"  {'token_id':>20} {'rarity.tools':>12} {'OpenRarity':>10}")
    for _, token_id, r in ranked[:top]:
        lines.append(f"  {token_id:>20} {r['rarity_rank'] or '-':>12} {r['ic_rank'] or '-':>10}")
    if report["warnings"]:
        lines += ["", "Notes"] + [f"  - {w['message']}" for w in report["warnings"]]
    return "\n".join(lines) + "\n"
