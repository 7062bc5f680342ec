"""Small collections built straight through the ORM (no ingestion), for the analytics tests."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from collections_app.models import Collection, Sale, Token, TokenTrait, Trait

BASE_TIME = datetime(2021, 4, 1, tzinfo=UTC)


def make_collection(slug="test-collection", tokens=(), name=None, **fields):
    """A collection with tokens, traits, last sales and Sale rows.

    Each token is a dict: ``traits`` [(type, value), ...]; ``usd`` / ``native`` (strings or
    Decimals, None for unsold); ``symbol`` (default ETH); ``owner``; ``token_id`` (default the
    position); ``name``; ``days`` (sale day offset, default the position).
    """
    collection = Collection.objects.create(slug=slug, name=name or slug.title(), **fields)
    traits = {}
    token_rows, links, sales = [], [], []
    for i, spec in enumerate(tokens):
        token_id = str(spec.get("token_id", i))
        native = spec.get("native")
        usd = spec.get("usd")
        if native is None and usd is not None:
            native = Decimal(str(usd)) / 1000
        sold_at = BASE_TIME + timedelta(days=spec.get("days", i)) if native is not None else None
        token = Token(
            collection=collection,
            token_id=token_id,
            token_number=int(token_id) if token_id.isdigit() else None,
            name=spec.get("name", f"Token #{token_id}"),
            owner_address=spec.get("owner", f"0xowner{i % 7}"),
            trait_count=len(spec.get("traits", ())),
            last_sale_amount=Decimal(str(native)) if native is not None else None,
            last_sale_symbol=spec.get("symbol", "ETH") if native is not None else "",
            last_sale_usd=Decimal(str(usd)) if usd is not None else None,
            last_sale_at=sold_at,
        )
        token_rows.append((token, spec))
    Token.objects.bulk_create([t for t, _ in token_rows])
    for token, spec in token_rows:
        for trait_type, value in spec.get("traits", ()):
            key = (trait_type, value)
            if key not in traits:
                traits[key] = Trait.objects.create(
                    collection=collection, trait_type=trait_type, value=value
                )
            links.append(TokenTrait(token=token, trait=traits[key]))
        if token.last_sale_amount is not None:
            sales.append(
                Sale(
                    collection=collection,
                    token=token,
                    source_key=f"last_sale:{token.token_id}",
                    amount=token.last_sale_amount,
                    symbol=token.last_sale_symbol,
                    usd=token.last_sale_usd,
                    timestamp=token.last_sale_at,
                )
            )
    TokenTrait.objects.bulk_create(links)
    Sale.objects.bulk_create(sales)
    for trait in traits.values():
        trait.count = trait.tokens.count()
        trait.save(update_fields=["count"])
    collection.bump_data_version()
    return collection


def punks_like(n=40, slug="punks", seed=7):
    """A CryptoPunks-shaped collection: one `type`, several `accessory` values per token."""
    import random

    rng = random.Random(seed)
    types = ["Male"] * 6 + ["Female"] * 4 + ["Zombie", "Ape", "Alien"]
    accessories = ["Earring", "Cigarette", "Mohawk", "Hoodie", "Pipe", "Eye Patch", "Beanie"]
    tokens = []
    for _ in range(n):
        traits = [("type", rng.choice(types))]
        traits += [("accessory", a) for a in rng.sample(accessories, rng.randint(0, 3))]
        sold = rng.random() < 0.6
        usd = Decimal(rng.randint(1000, 900000)) / 100 if sold else None
        tokens.append({"traits": traits, "usd": usd, "native": usd / 2000 if sold else None})
    return make_collection(slug, tokens, name="Punks Like")
