"""Training subsets: top % by price (of the sold), by rarity, traits, ranges; frozen lists."""

from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from collections_app.analytics import compute as analytics
from collections_app.analytics.subsets import (
    COLLAPSE_RISK_BELOW,
    SubsetError,
    SubsetSpec,
    build_training_set,
    parse_trait,
    top_count,
)
from collections_app.models import Token, TrainingSet, Trait

from .factory import make_collection, punks_like

pytestmark = pytest.mark.django_db


def priced(n_sold, n_unsold=0, slug="priced"):
    tokens = [
        {"usd": Decimal(100 * (i + 1)), "traits": [("kind", "a" if i % 2 else "b")]}
        for i in range(n_sold)
    ]
    tokens += [{"traits": [("kind", "a")]} for _ in range(n_unsold)]
    return make_collection(slug, tokens)


def test_it_takes_the_top_15_percent_of_the_sold_tokens_by_price():
    collection = priced(n_sold=40, n_unsold=60)
    training_set, _ = build_training_set(collection, "top15", SubsetSpec(top_price_pct=15))

    chosen = list(training_set.tokens.order_by("-last_sale_usd"))
    assert training_set.token_count == len(chosen) == 6  # 15% of 40 sold, not of 100 tokens
    assert [t.last_sale_usd for t in chosen] == [Decimal(100 * i) for i in range(40, 34, -1)]
    assert training_set.stats["cutoffs"] == {
        "price_usd_at_least": "3500.000000",
        "sold_candidates": 40,
    }


def test_it_rounds_the_count_half_up_and_keeps_at_least_one():
    assert top_count(286, 15) == 43  # 42.9
    assert top_count(10, 15) == 2  # 1.5 rounds up
    assert top_count(3, 1) == 1
    assert top_count(0, 50) == 0


def test_it_breaks_price_ties_at_the_cutoff_by_token_number():
    tokens = [{"usd": 500}] + [{"usd": 100} for _ in range(5)]
    collection = make_collection("ties", tokens)
    training_set, _ = build_training_set(collection, "top", SubsetSpec(top_price_pct=50))

    assert sorted(training_set.tokens.values_list("token_number", flat=True)) == [0, 1, 2]


def test_it_takes_the_top_percent_by_rarity_rank():
    collection = punks_like(n=40)
    training_set, _ = build_training_set(
        collection, "rare", SubsetSpec(top_rarity_pct=25, rarity_metric="openrarity")
    )
    ranks = sorted(training_set.tokens.values_list("ic_rank", flat=True))
    others = Token.objects.filter(collection=collection).exclude(training_sets=training_set)

    assert training_set.token_count == 10
    assert max(ranks) <= min(others.values_list("ic_rank", flat=True))


def test_it_combines_trait_filters_values_of_a_type_or_types_and():
    collection = punks_like(n=60)
    spec = SubsetSpec(
        include_traits=[("type", "Male"), ("type", "female"), ("accessory", "Earring")],
        exclude_traits=[("accessory", "Pipe")],
    )
    training_set, _ = build_training_set(collection, "earrings", spec)

    for token in training_set.tokens.all():
        held = {(t.trait_type, t.value) for t in token.traits.all()}
        assert {("type", "Male"), ("type", "Female")} & held
        assert ("accessory", "Earring") in held
        assert ("accessory", "Pipe") not in held
    expected = [
        t
        for t in Token.objects.filter(collection=collection)
        if {v for _, v in t.traits.values_list("trait_type", "value")} & {"Male", "Female"}
        and t.traits.filter(value="Earring").exists()
        and not t.traits.filter(value="Pipe").exists()
    ]
    assert training_set.token_count == len(expected)


def test_it_filters_a_rarity_rank_range_and_sold_only():
    collection = punks_like(n=50)
    spec = SubsetSpec(min_rarity_rank=5, max_rarity_rank=30, sold_only=True)
    training_set, _ = build_training_set(collection, "mid", spec)

    tokens = list(training_set.tokens.all())
    assert tokens
    assert all(5 <= t.rarity_rank <= 30 and t.last_sale_amount is not None for t in tokens)
    assert [s["step"] for s in training_set.stats["funnel"]] == [
        "all tokens",
        "sold",
        "rarity rank 5 to 30",
    ]


def test_it_freezes_the_list_with_stats_next_to_the_collections():
    collection = priced(n_sold=20, n_unsold=5)
    training_set, warnings = build_training_set(collection, "frozen", SubsetSpec(top_price_pct=50))
    collection.refresh_from_db()

    assert training_set.data_version == collection.data_version
    assert training_set.filter_spec["top_price_pct"] == 50
    assert training_set.stats["subset"]["tokens"] == 10
    assert training_set.stats["collection"]["tokens"] == 25
    assert training_set.stats["subset"]["price_usd"]["min"] == "1100"
    assert training_set.stats["collection"]["price_usd"]["min"] == "100"
    assert training_set.stats["subset"]["share_of_collection"] == pytest.approx(0.4)
    # Later changes to the collection leave the frozen list alone.
    Token.objects.filter(collection=collection).update(last_sale_usd=1)
    assert training_set.tokens.count() == 10
    assert any("collapse" in w for w in warnings)


def test_it_warns_about_small_subsets_but_builds_them():
    collection = priced(n_sold=4)
    training_set, warnings = build_training_set(collection, "tiny", SubsetSpec())

    assert training_set.token_count == 4 < COLLAPSE_RISK_BELOW
    assert warnings == [
        "Only 4 token(s): GANs trained on a few thousand images or fewer tend to collapse "
        "onto a handful of outputs. Consider a looser filter or augmentation."
    ]


def test_it_refuses_an_empty_subset_saying_which_filter_emptied_it():
    collection = priced(n_sold=0, n_unsold=5)
    with pytest.raises(
        SubsetError,
        match=r"no tokens match sold, top 15% of sold by price \(all tokens: 5 -> sold: 0",
    ):
        build_training_set(collection, "nothing", SubsetSpec(top_price_pct=15, sold_only=True))

    assert not TrainingSet.objects.exists()


def test_it_refuses_an_unknown_trait_a_taken_name_and_bad_numbers():
    collection = priced(n_sold=5)
    build_training_set(collection, "taken", SubsetSpec())

    with pytest.raises(SubsetError, match=r"has no trait hat=cap \(trait types: kind"):
        build_training_set(collection, "x", SubsetSpec(include_traits=[("hat", "cap")]))
    with pytest.raises(SubsetError, match="already has a training set named 'taken'"):
        build_training_set(collection, "taken", SubsetSpec())
    with pytest.raises(SubsetError, match="at most 100"):
        build_training_set(collection, "x", SubsetSpec(top_price_pct=150))
    with pytest.raises(SubsetError, match="minimum rarity rank 9 is above the maximum 3"):
        build_training_set(collection, "x", SubsetSpec(min_rarity_rank=9, max_rarity_rank=3))
    with pytest.raises(SubsetError, match="not TYPE=VALUE"):
        parse_trait("accessory")


def test_it_computes_stale_analytics_before_selecting_by_rarity():
    collection = punks_like(n=20)
    assert not collection.analytics
    training_set, _ = build_training_set(collection, "rare", SubsetSpec(top_rarity_pct=10))
    collection.refresh_from_db()

    assert collection.analytics_fresh
    assert training_set.token_count == 2


def test_it_builds_from_the_command_line(capsys):
    collection = priced(n_sold=40, n_unsold=10)
    call_command(
        "make_training_set",
        collection.slug,
        "cli-top",
        "--top-price-pct",
        "15",
        "--trait",
        "kind=a",
    )
    out, err = capsys.readouterr()
    training_set = TrainingSet.objects.get(name="cli-top")

    # kind=a: 20 sold + 10 unsold; top 15% of the 20 sold = 3.
    assert training_set.token_count == 3
    assert "Created training set priced/cli-top" in out
    assert "3 of 50 tokens (kind=a, top 15% of sold by price)" in out
    assert "warning: Only 3 token(s)" in err


def test_it_exits_with_a_one_line_error_on_bad_input():
    collection = priced(n_sold=3)
    with pytest.raises(CommandError, match="no collection with slug 'nope'"):
        call_command("make_training_set", "nope", "x")
    with pytest.raises(CommandError, match="not TYPE=VALUE"):
        call_command("make_training_set", collection.slug, "x", "--trait", "oops")
    with pytest.raises(CommandError, match="no tokens match"):
        call_command(
            "make_training_set",
            collection.slug,
            "x",
            "--exclude-trait",
            "kind=a",
            "--exclude-trait",
            "kind=b",
        )


def test_it_builds_from_the_admin_form_and_shows_both_stats(admin_client):
    collection = priced(n_sold=20)
    url = reverse("admin:collections_app_trainingset_build")
    form = {
        "collection": collection.pk,
        "name": "admin-top",
        "top_price_pct": "15",
        "rarity_metric": "rarity",
        "include_traits": "",
        "exclude_traits": "",
    }
    response = admin_client.post(url, form, follow=True)
    training_set = TrainingSet.objects.get(name="admin-top")
    html = response.content.decode()

    assert training_set.token_count == 3
    assert "Subset vs collection" in html
    assert "<th>Tokens</th><td>3</td><td>20</td>" in html
    assert "tend to collapse" in html
    assert admin_client.get(reverse("admin:collections_app_trainingset_add")).status_code == 302


def test_it_shows_admin_form_errors_for_an_empty_subset(admin_client):
    collection = priced(n_sold=0, n_unsold=3)
    response = admin_client.post(
        reverse("admin:collections_app_trainingset_build"),
        {
            "collection": collection.pk,
            "name": "none",
            "top_price_pct": "10",
            "rarity_metric": "rarity",
        },
    )

    assert response.status_code == 200
    assert "No tokens match" in response.content.decode()
    assert not TrainingSet.objects.exists()


def test_it_shows_subset_stats_for_an_analysed_collection():
    collection = priced(n_sold=10)
    analytics.compute(collection)
    training_set, _ = build_training_set(collection, "all", SubsetSpec())

    assert (
        training_set.stats["subset"]["rarity_score"]
        == training_set.stats["collection"]["rarity_score"]
    )


# --- Content safeguard: excluded trait values ---------------------------------------------------


def holders(collection, value):
    return set(
        Token.objects.filter(collection=collection, traits__value=value).values_list(
            "pk", flat=True
        )
    )


def exclude_pipe(collection):
    pipe = Trait.objects.filter(collection=collection, trait_type="accessory", value="Pipe")
    assert Trait.exclude_values(pipe, "offensive in this collection") == 1
    return holders(collection, "Pipe")


def test_it_leaves_out_tokens_with_an_excluded_trait_by_default():
    collection = punks_like(n=60)
    piped = exclude_pipe(collection)
    assert piped

    left_out, _ = build_training_set(collection, "safe", SubsetSpec())
    kept, _ = build_training_set(collection, "all", SubsetSpec(leave_out_excluded=False))

    assert not piped & set(left_out.tokens.values_list("pk", flat=True))
    assert left_out.token_count == 60 - len(piped)
    assert {"step": "without excluded traits", "remaining": 60 - len(piped)} in left_out.stats[
        "funnel"
    ]
    assert kept.token_count == 60
    assert kept.filter_spec["leave_out_excluded"] is False


def test_it_keeps_excluded_traits_only_when_asked_on_the_command_line():
    collection = punks_like(n=40)
    piped = exclude_pipe(collection)

    call_command("make_training_set", collection.slug, "cli-safe")
    call_command("make_training_set", collection.slug, "cli-all", "--keep-excluded")

    assert TrainingSet.objects.get(name="cli-safe").token_count == 40 - len(piped)
    assert TrainingSet.objects.get(name="cli-all").token_count == 40


def test_it_keeps_excluded_traits_only_when_the_admin_form_says_so(admin_client):
    collection = punks_like(n=40)
    piped = exclude_pipe(collection)
    url = reverse("admin:collections_app_trainingset_build")
    form = {"collection": collection.pk, "rarity_metric": "rarity"}

    admin_client.post(url, {**form, "name": "form-safe"})
    admin_client.post(url, {**form, "name": "form-all", "keep_excluded": "on"})

    assert TrainingSet.objects.get(name="form-safe").token_count == 40 - len(piped)
    assert TrainingSet.objects.get(name="form-all").token_count == 40


def test_it_excludes_trait_values_from_the_admin_with_a_required_reason(admin_client):
    collection = punks_like(n=20)
    pipe = Trait.objects.get(collection=collection, trait_type="accessory", value="Pipe")
    url = reverse("admin:collections_app_trait_changelist")
    chosen = {"action": "exclude_values", "_selected_action": [pipe.pk]}

    asked = admin_client.post(url, chosen)
    refused = admin_client.post(url, {**chosen, "apply": "1", "reason": "  "})
    pipe.refresh_from_db()
    assert asked.status_code == 200 and "Pipe" in asked.content.decode()
    assert refused.status_code == 200 and not pipe.is_excluded

    done = admin_client.post(url, {**chosen, "apply": "1", "reason": "Glorifies smoking"})
    pipe.refresh_from_db()
    assert done.status_code == 302
    assert pipe.is_excluded and pipe.excluded_reason == "Glorifies smoking" and pipe.excluded_at
