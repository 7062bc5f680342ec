import io
import json
import zipfile

import pytest
from PIL import Image

from collections_app.demo import build as demo


@pytest.fixture(scope="session")
def tiny_demo():
    """24 demo tokens (seed 5), generated once per session."""
    return demo.demo_tokens(24, 5, "tiny-fakes")


@pytest.fixture
def demo_pair(tmp_path):
    """A demo seed archive pair on disk: (images_zip, metadata_zip)."""
    return demo.write_demo_archives(tmp_path / "src", slug="tiny-fakes", size=24, seed=5)


def png_bytes(size=(8, 8), color=(255, 0, 0, 255), mode="RGBA"):
    buffer = io.BytesIO()
    Image.new(mode, size, color[: len(mode)] if mode != "P" else 3).save(buffer, "PNG")
    return buffer.getvalue()


def write_zip(path, members):
    """members: {name: bytes | str}; returns the path."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return str(path)


def asset(token_id, **extra):
    """A minimal valid OpenSea v1 asset object."""
    return json.dumps(
        {
            "token_id": str(token_id),
            "name": f"Thing #{token_id}",
            "traits": [{"trait_type": "colour", "value": "red"}],
            "last_sale": None,
            **extra,
        }
    )
