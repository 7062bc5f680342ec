"""manage.py fabricate: in-process, --out unpacks the export, bad input is one line."""

import json

import pytest
from django.core.management import CommandError, call_command

from collections_app.models import Collection


@pytest.mark.django_db(transaction=True)
def test_it_fabricates_and_writes_the_export(spread, tmp_path, capsys):
    out = tmp_path / "out"
    call_command("fabricate", spread.slug, "--count", "6", "--seed", "2", "--out", str(out))
    printed = capsys.readouterr().out
    assert "6 of 6 tokens" in printed and "provenance" in printed
    assert sorted(p.name for p in (out / "erc721" / "images").iterdir()) == [
        f"{i}.png" for i in range(6)
    ]
    metadata = json.loads((out / "erc721" / "metadata" / "0").read_text())
    assert metadata["image"] == "0.png" and metadata["attributes"]
    assert Collection.objects.get(source=Collection.Source.FABRICATED).tokens.count() == 6


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "args, message",
    [
        (["--count", "20001"], "over the maximum of 10,000"),
        (["--count", "0"], "positive whole number"),
        (["--count", "3", "--traits", "nope.json"], "not source, uniform or a JSON file"),
    ],
)
def test_it_refuses_bad_input_in_one_line(spread, args, message):
    with pytest.raises(CommandError, match=message) as error:
        call_command("fabricate", spread.slug, *args)
    assert "\n" not in str(error.value)
    assert not Collection.objects.filter(source=Collection.Source.FABRICATED).exists()


@pytest.mark.django_db(transaction=True)
def test_it_names_an_unknown_trait_of_a_table_file(conditional, tmp_path):
    table = tmp_path / "table.json"
    table.write_text(json.dumps({"Hairdo": {"Mohawk": 1}}))
    with pytest.raises(CommandError, match="Hairdo"):
        call_command("fabricate", conditional.slug, "--count", "3", "--traits", str(table))


@pytest.mark.django_db
def test_it_names_an_unknown_generator(db):
    with pytest.raises(CommandError, match="no generator 'missing'"):
        call_command("fabricate", "missing", "--count", "3")


@pytest.mark.django_db(transaction=True)
def test_it_refuses_a_generator_the_quality_gate_kept_unlisted(spread):
    spread.is_listed = False
    spread.save(update_fields=["is_listed"])
    with pytest.raises(CommandError, match="is not listed"):
        call_command("fabricate", spread.slug, "--count", "3")
