"""Rarity of each fabricated token within its new collection: the catalog's rarity.tools and
OpenRarity scores (``collections_app.analytics.rarity``, plain numpy/pandas), handed to the
Django-free fabricator (``gan_app.gan.fabrication.summarise(..., rarity=collection_rarity)``),
which must not import app code itself.
"""

from collections_app.analytics.rarity import TraitPairs, score_collection


def collection_rarity(records) -> list[dict]:
    tokens = [r["token_id"] for r in records]
    pairs = TraitPairs.from_records(
        tokens,
        [(r["token_id"], t["trait_type"], t["value"]) for r in records for t in r["traits"]],
    )
    frame = score_collection(pairs)
    return [
        {
            "rarity_score": round(float(row.rarity_score), 6),
            "rarity_rank": int(row.rarity_rank),
            "ic_score": round(float(row.ic_score), 6),
            "ic_rank": int(row.ic_rank),
        }
        for row in frame.itertuples()
    ]
