import numpy as np
import pytest

from gan_app.gan import ConditionError, ConditionVocabulary, GANConfig, Trainer, trait_hit_rate
from gan_app.gan.sampling import latent_vectors, to_uint8
from gan_app.gan.trait_classifier import TraitClassifier
from tests.gan.trait_images import draw_collection

COLOURS = ("red", "green", "blue", "none")
MARKS = ("dot", "bar", "stripe", "none")


@pytest.fixture(scope="module")
def collection():
    return draw_collection(160, size=32, seed=5)


@pytest.fixture(scope="module")
def classifier(collection):
    """Trained on the real images only (a fifth held out for its own accuracy)."""
    images, traits = collection
    return TraitClassifier.fit(
        images, traits, image_size=16, epochs=12, width=8, feature_dim=32, learning_rate=3e-3
    )


def test_it_scores_real_images_asked_for_their_own_traits(collection, classifier):
    images, traits = collection
    asked = [{"colour": dict(t).get("colour", "none")} for t in traits]
    wrong = [{"colour": "blue" if a["colour"] != "blue" else "red"} for a in asked]

    report = trait_hit_rate(images, asked, classifier)

    predicted = [
        p["colour"][0]["value"] if p["colour"] else "none"
        for p in classifier.predict_traits(images)
    ]
    assert report["requested"] == 160
    agree = [p == a["colour"] for p, a in zip(predicted, asked, strict=True)]
    assert report["overall"] == np.mean(agree)
    assert report["overall"] >= 0.8
    assert trait_hit_rate(images, wrong, classifier)["overall"] <= 0.1
    red = report["per_trait"]["colour"]["red"]
    assert red["requested"] == sum(a["colour"] == "red" for a in asked)
    assert red["classifier_recall"] == classifier.metrics["per_trait"]["colour"]["red"]["recall"]
    colour = report["per_type"]["colour"]
    assert colour["classifier_accuracy"] == classifier.metrics["per_type_accuracy"]["colour"]
    assert report["recognised"]["threshold"] == 0.95


def test_it_counts_each_requested_value_of_a_multi_valued_type(collection, classifier):
    images, traits = collection
    marks = [sorted(v for k, v in t if k == "mark") or ["none"] for t in traits]

    report = trait_hit_rate(images, [{"mark": m} for m in marks], classifier)

    assert report["requested"] == sum(len(m) for m in marks)
    assert report["per_trait"]["mark"]["none"]["requested"] == sum(m == ["none"] for m in marks)
    assert report["overall"] >= 0.85


def test_it_needs_the_vocabulary_to_score_other_and_matching_lengths(collection, classifier):
    images, traits = collection
    vocabulary = ConditionVocabulary.from_traits(traits, min_count=60)
    rare = vocabulary.by_name["colour"].rare

    with pytest.raises(ConditionError, match="only be scored with the run's vocabulary"):
        trait_hit_rate(images[:2], [{"colour": "other"}] * 2, classifier)
    with pytest.raises(ValueError, match="3 images but 2 requests"):
        trait_hit_rate(images[:3], [{"colour": "red"}] * 2, classifier)
    report = trait_hit_rate(
        images[:20], [{"colour": "other"}] * 20, classifier, vocabulary=vocabulary
    )
    grouped = sum(dict(t).get("colour") in rare for t in traits[:20])
    assert abs(report["overall"] - grouped / 20) <= 0.15


def test_it_measures_a_conditional_generator_drawing_what_was_asked(collection, classifier):
    images, traits = collection
    config = GANConfig(
        latent_dim=16,
        generator_width=8,
        discriminator_width=8,
        batch_size=16,
        epochs=30,
        conditional=True,
    )
    trainer = Trainer(config, images, traits=traits)
    trainer.run()
    asks = [{"colour": c} for c in COLOURS] + [{"mark": [m]} for m in MARKS]
    wanted = [ask for ask in asks for _ in range(10)]
    rows = np.concatenate(
        [
            trainer.vocabulary.resolve(ask, range(i * 10, i * 10 + 10)).labels
            for i, ask in enumerate(asks)
        ]
    )
    drawn = to_uint8(trainer.generator([latent_vectors(range(80), 16), rows]))
    # The same images scored against the next value of the same type: the chance level.
    shifted = [
        {"colour": COLOURS[(COLOURS.index(w["colour"]) + 1) % 4]}
        if "colour" in w
        else {"mark": [MARKS[(MARKS.index(w["mark"][0]) + 1) % 4]]}
        for w in wanted
    ]

    hit = trait_hit_rate(drawn, wanted, classifier, vocabulary=trainer.vocabulary)
    chance = trait_hit_rate(drawn, shifted, classifier, vocabulary=trainer.vocabulary)

    assert hit["overall"] >= 0.7
    assert hit["per_type"]["colour"]["hit_rate"] >= 0.7
    assert chance["overall"] <= 0.45
