"""Archive member names and metadata values from strangers: bad items are refused one by one,
the valid token always lands, and the import as a whole never fails."""

import json
import zipfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collections_app.ingest.archives import import_archive
from collections_app.models import Collection, IngestJob, Token
from tests.ingest.conftest import png_bytes

pytestmark = pytest.mark.django_db

PNG = png_bytes()
odd = st.sampled_from(
    ["²", "①", "¹²", "\uff11\uff12", "\u0661\u0662\u0663", "007", "1e400", "NaN", "-1", "9" * 80]
)
# ASCII-digit stems are valid token ids: they would only collide with 0.png/1.json (duplicates).
# No NUL: Python's zipfile cuts a member name at it, so "\x00.png" could not even be written.
names = (
    (odd | st.text(min_size=1, max_size=12))
    .map(lambda s: s.replace("/", "_").replace("\x00", "_"))
    .filter(lambda s: not (s.isascii() and s.isdigit()))
)
values = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12) | odd


def write(path, members):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return str(path)


def valid_asset(token_id):
    return json.dumps({"token_id": str(token_id), "name": f"Thing {token_id}", "traits": []})


@settings(max_examples=15)  # each example is a whole import
@given(
    stems=st.lists(names, max_size=3, unique=True),
    extension=st.sampled_from([".png", ".json", ".PNG", "", ".txt"]),
    sale=st.fixed_dictionaries(
        {"total_price": values, "quantity": values, "event_timestamp": values},
        optional={"payment_token": st.fixed_dictionaries({"symbol": values, "usd_price": values})},
    ),
    token_id=values,
)
def test_odd_members_and_values_are_refused_per_item(
    tmp_path_factory, stems, extension, sale, token_id
):
    Token.objects.all().delete()
    Collection.objects.all().delete()
    IngestJob.objects.all().delete()
    folder = tmp_path_factory.mktemp("fuzz")
    odd_asset = json.dumps({"token_id": token_id, "last_sale": sale, "traits": []})
    images = {"0.png": PNG, **{f"{stem}{extension}": PNG for stem in stems}}
    metadata = {
        "0.json": valid_asset(0),
        "1.json": odd_asset,
        **{f"{stem}{extension}": odd_asset for stem in stems},
    }
    images_path = write(folder / "fz_archive.zip", images)
    metadata_path = write(folder / "fz_metadata_archive.zip", metadata)

    summary = import_archive(images_path, metadata_path)

    assert Token.objects.filter(token_id="0").exists()
    assert summary.written >= 1
