"""The normalised token record every source (API, archive, demo) is turned into before writing.

Sources disagree on shapes; the upsert service only knows :class:`TokenRecord`. Converting is
where bad input is caught: :class:`ItemError` rejects one token with a reason, and problems that
do not invalidate the token (an unreadable price) are kept as ``warnings`` on the record.
"""

import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from collections_app import prices
from nftsite.parsing import IntegerParseError, parse_ascii_int

# Key under which export_archive adds our rarity figures to each token's metadata; stripped on
# import so an export -> import round trip stores exactly what the source said.
RARITY_KEY = "nff_rarity"
MAX_METADATA_BYTES = 1024 * 1024
MAX_TRAITS = 200
_BIGINT_MAX = 2**63 - 1


class ItemError(Exception):
    """One token (or archive entry) could not be used; ``reason`` says why in plain words."""

    def __init__(self, item, reason):
        super().__init__(f"{item}: {reason}")
        self.item = str(item)
        self.reason = reason

    def as_dict(self, imported=False):
        return {"item": self.item, "reason": self.reason, "imported": imported}


@dataclass(frozen=True)
class TraitRecord:
    trait_type: str
    value: str
    display_type: str = ""


@dataclass
class SaleRecord:
    source_key: str
    amount: Decimal
    symbol: str
    timestamp: datetime
    usd: Decimal | None = None
    usd_rate: Decimal | None = None
    quantity: int = 1
    tx_hash: str = ""
    buyer: str = ""
    seller: str = ""
    # The sale as an OpenSea v1 ``last_sale`` object, kept so metadata can describe it exactly.
    v1: dict | None = None


@dataclass
class StoredImage:
    """An image verified and saved through Django storage; see ``ingest.images``."""

    name: str  # the normalised RGBA PNG that training reads
    original_name: str  # the bytes exactly as received (the same file when already RGBA PNG)
    sha256: str  # of the original bytes
    size: int
    width: int
    height: int
    format: str


@dataclass
class TokenRecord:
    token_id: str
    name: str = ""
    description: str = ""
    image_url: str = ""
    owner_address: str = ""
    traits: list[TraitRecord] = field(default_factory=list)
    sales: list[SaleRecord] = field(default_factory=list)
    metadata: dict = field(default_factory=dict)
    image: StoredImage | None = None
    contract_address: str = ""
    contract_name: str = ""
    schema_name: str = ""
    warnings: list[str] = field(default_factory=list)

    @property
    def token_number(self):
        number = int(self.token_id)
        return number if number <= _BIGINT_MAX else None


def canonical_token_id(value, item=None):
    """A uint256 token id as its canonical decimal string ("007" -> "7")."""
    if isinstance(value, bool):
        raise ItemError(item if item is not None else value, f"token_id {value!r} is not a number")
    text = str(value).strip() if isinstance(value, int | str) else ""
    try:
        return str(parse_ascii_int(text, name="token_id"))
    except IntegerParseError:
        raise ItemError(
            item if item is not None else value,
            f"token_id {value!r} is not a non-negative integer",
        ) from None


def clean_json(value):
    """Drop what PostgreSQL jsonb refuses from a tree: NUL characters, and NaN or infinite
    numbers (Python's json reads bare ``NaN`` and ``1e400``), which become their text."""
    if isinstance(value, str):
        return value.replace("\x00", "") if "\x00" in value else value
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {clean_json(str(k)): clean_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clean_json(v) for v in value]
    return value


def text(value, limit=None):
    """A display string from loose JSON: None -> "", NULs removed, cut to ``limit``."""
    if value is None:
        return ""
    result = clean_json(value if isinstance(value, str) else str(value))
    return result[:limit] if limit else result


def trait_value(value):
    """Trait values are text in our model; numbers keep their JSON spelling (7, 2.5, true)."""
    if isinstance(value, str):
        return value
    return json.dumps(value)


def parse_traits(raw, item):
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ItemError(item, f"traits must be a list, got {type(raw).__name__}")
    if len(raw) > MAX_TRAITS:
        raise ItemError(item, f"{len(raw)} traits (more than {MAX_TRAITS})")
    traits = []
    for position, entry in enumerate(raw):
        if not isinstance(entry, dict):
            raise ItemError(item, f"trait #{position} is not an object")
        trait_type = text(entry.get("trait_type")).strip()
        raw_value = entry.get("value")
        if not trait_type or raw_value is None:
            raise ItemError(item, f"trait #{position} lacks a trait_type or value")
        value = text(trait_value(raw_value)).strip()
        if len(trait_type) > 200 or len(value) > 500:
            raise ItemError(item, f"trait #{position} is too long ({trait_type[:40]!r}...)")
        record = TraitRecord(trait_type, value, text(entry.get("display_type"), 50))
        if record not in traits:
            traits.append(record)
    return traits


def parse_timestamp(value, field_name="event_timestamp"):
    """ISO 8601 text (naive means UTC, as OpenSea v1 wrote it) or Unix seconds -> aware datetime."""
    if isinstance(value, bool):
        raise ValueError(f"{field_name}={value!r} is not a time")
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, tz=UTC)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{field_name}={value!r} is not a time")
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{field_name}={value!r} is not an ISO 8601 time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def sale_from_v1_last_sale(raw, token_id):
    """An OpenSea v1 ``last_sale`` object as a :class:`SaleRecord`; raises PriceError/ValueError."""
    if not isinstance(raw, dict):
        raise ValueError(f"last_sale must be an object, got {type(raw).__name__}")
    _refuse_non_finite(raw, "last_sale")
    price = prices.convert_payment(raw.get("total_price"), raw.get("payment_token"))
    timestamp = parse_timestamp(raw.get("event_timestamp"), "last_sale.event_timestamp")
    transaction = raw.get("transaction") if isinstance(raw.get("transaction"), dict) else {}
    tx_hash = text(transaction.get("transaction_hash"), 80)
    try:
        quantity = max(1, parse_ascii_int(str(raw.get("quantity") or 1).strip()))
    except IntegerParseError:
        raise ValueError(f"last_sale.quantity={raw.get('quantity')!r} is not a number") from None
    # Several punks share one timestamp, so the token id is part of the key.
    key = (
        f"tx:{tx_hash}:{token_id}"
        if tx_hash
        else f"last_sale:{token_id}:{int(timestamp.timestamp())}"
    )
    return SaleRecord(
        source_key=key,
        amount=price.amount,
        symbol=price.symbol,
        usd=price.usd,
        usd_rate=price.usd_rate,
        quantity=quantity,
        timestamp=timestamp,
        tx_hash=tx_hash,
        v1=raw,
    )


def _refuse_non_finite(value, path):
    """Bare ``NaN`` or ``1e400`` in JSON reads as a float no price, count or time can be."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{path}={value!r} is not a finite number")
    if isinstance(value, dict | list):
        for key, child in value.items() if isinstance(value, dict) else enumerate(value):
            _refuse_non_finite(child, f"{path}.{key}")


def record_from_v1_asset(data, expected_token_id=None):
    """Turn one OpenSea v1 asset object (archive metadata, demo output) into a TokenRecord.

    Raises :class:`ItemError` when the object cannot describe a token; a last sale that cannot
    be read is dropped with a warning instead, so the token and its traits still land.
    """
    item = expected_token_id if expected_token_id is not None else "?"
    if not isinstance(data, dict):
        raise ItemError(item, f"metadata must be a JSON object, got {type(data).__name__}")
    if "token_id" not in data:
        raise ItemError(item, "metadata has no token_id")
    token_id = canonical_token_id(data["token_id"], item)
    if expected_token_id is not None and token_id != expected_token_id:
        raise ItemError(
            expected_token_id, f"file is named {expected_token_id} but its token_id is {token_id}"
        )
    metadata = {k: v for k, v in data.items() if k != RARITY_KEY}
    dumped = json.dumps(metadata)
    if len(dumped) > MAX_METADATA_BYTES:
        raise ItemError(token_id, f"metadata is larger than {MAX_METADATA_BYTES // 1024} KiB")
    if "\\u0000" in dumped or "NaN" in dumped or "Infinity" in dumped:  # rare: walk the tree
        metadata = clean_json(metadata)
    contract = (
        metadata.get("asset_contract") if isinstance(metadata.get("asset_contract"), dict) else {}
    )
    owner = metadata.get("owner")
    owner_address = owner.get("address") if isinstance(owner, dict) else owner
    record = TokenRecord(
        token_id=token_id,
        name=text(metadata.get("name"), 300),
        description=text(metadata.get("description")),
        image_url=_url(metadata.get("image_url")),
        owner_address=text(owner_address, 64),
        traits=parse_traits(metadata.get("traits"), token_id),
        metadata=metadata,
        contract_address=text(contract.get("address"), 64),
        contract_name=text(contract.get("name"), 300),
        schema_name=text(contract.get("schema_name"), 32),
    )
    if metadata.get("last_sale") is not None:
        try:
            record.sales.append(sale_from_v1_last_sale(data["last_sale"], token_id))  # uncleaned
        except (prices.PriceError, ValueError) as exc:
            record.warnings.append(f"last sale skipped: {exc}")
    return record


def _url(value):
    url = text(value)
    return url if url.startswith(("http://", "https://")) and len(url) <= 2000 else ""
