"""manage.py generate GENERATOR [--seed K] [--count N] OUTDIR"""

import json

import pytest
from django.core.management import CommandError, call_command
from PIL import Image

from gan_app.generation.requests import MAX_SEED
from gan_app.models import GeneratedImage

pytestmark = pytest.mark.django_db


def test_it_writes_pngs_and_metadata_through_the_same_service(generator, tmp_path, settings):
    settings.SITE_URL = "https://fakes.example.com"
    out = tmp_path / "out"

    call_command("generate", generator.slug, str(out), seed=100, count=3)

    names = sorted(p.name for p in out.iterdir())
    assert names == [f"tiny-v1-{s}.{ext}" for s in (100, 101, 102) for ext in ("json", "png")]
    assert Image.open(out / "tiny-v1-101.png").size == (32, 32)
    meta = json.loads((out / "tiny-v1-101.json").read_text())
    assert meta["image"] == "https://fakes.example.com/g/tiny-v1/101.png"
    assert {"trait_type": "seed", "value": 101, "display_type": "number"} in meta["attributes"]
    stored = GeneratedImage.objects.get(seed=101)
    with stored.image.open("rb") as fh:
        assert fh.read() == (out / "tiny-v1-101.png").read_bytes()


def test_it_gives_the_same_bytes_for_the_same_seed(generator, tmp_path):
    call_command("generate", generator.slug, str(tmp_path / "a"), seed=5)
    call_command("generate", str(generator.pk), str(tmp_path / "b"), seed=5)

    assert (tmp_path / "a/tiny-v1-5.png").read_bytes() == (
        tmp_path / "b/tiny-v1-5.png"
    ).read_bytes()
    meta = json.loads((tmp_path / "a/tiny-v1-5.json").read_text())
    assert meta["image"] == "tiny-v1-5.png"  # no SITE_URL: the file next to it
    assert GeneratedImage.objects.count() == 1


def test_it_picks_random_seeds_without_one(generator, tmp_path, capsys):
    call_command("generate", generator.slug, str(tmp_path), count=2)

    seeds = sorted(int(p.stem.rsplit("-", 1)[1]) for p in tmp_path.glob("*.png"))
    assert len(seeds) == 2 and seeds[1] == seeds[0] + 1 and seeds[1] <= MAX_SEED
    assert "Wrote 2 image(s)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "options", "message"),
    [
        (["nope"], {}, "no generator 'nope' (known: tiny-v1)"),
        (["tiny-v1"], {"seed": -1}, "seeds must be from 0"),
        (["tiny-v1"], {"seed": MAX_SEED, "count": 2}, "outside that range"),
        (["tiny-v1"], {"count": 0}, "--count must be from 1"),
    ],
)
def test_it_stops_with_a_one_line_error(generator, tmp_path, args, options, message):
    with pytest.raises(CommandError, match=message.replace("(", r"\(").replace(")", r"\)")):
        call_command("generate", *args, str(tmp_path), **options)
    assert GeneratedImage.objects.count() == 0


def test_it_refuses_an_outdir_that_is_a_file(generator, tmp_path):
    target = tmp_path / "file.txt"
    target.write_text("x")

    with pytest.raises(CommandError, match="is not a folder"):
        call_command("generate", generator.slug, str(target))


def test_it_exits_non_zero_on_the_command_line(tmp_path):
    import os
    import subprocess
    import sys

    from tests.testenv import ROOT
    from tests.workers import database_url

    result = subprocess.run(
        [sys.executable, "manage.py", "generate", "missing-gen", str(tmp_path)],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": database_url()},
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1].startswith("CommandError: no generator")
