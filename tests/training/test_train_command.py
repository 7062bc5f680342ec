"""manage.py train: in-process training that writes the same rows as the workers."""

import io

import pytest
from django.core.management import CommandError, call_command

from gan_app.models import Generator, TrainingRun
from tests.training.conftest import make_sprite_set

pytestmark = pytest.mark.django_db

TINY_ARGS = [
    "--epochs=2",
    "--batch-size=8",
    "--checkpoint-every=1",
    "--latent-dim=8",
    "--set=generator_width=4",
    "--set=discriminator_width=4",
]


def train(*args):
    out = io.StringIO()
    call_command("train", *args, stdout=out)
    return out.getvalue()


def test_it_trains_a_whole_collection_and_publishes_it(sprite_set):
    sprite_set.delete()  # the command builds the collection's "all" set itself
    output = train("sprites", "--publish", *TINY_ARGS)

    run = TrainingRun.objects.get()
    assert run.training_set.name == "all" and run.training_set.token_count == 32
    assert run.status == TrainingRun.Status.SUCCEEDED
    assert list(run.checkpoints.values_list("epoch", flat=True)) == [1, 2]
    generator = Generator.objects.get(training_run=run)
    assert generator.is_published
    assert "finished at epoch 2 of 2" in output and generator.slug in output


def test_it_stops_after_the_time_given_and_resumes(sprite_set):
    output = train(f"{sprite_set.collection.slug}/{sprite_set.name}", "--seconds=0.01", *TINY_ARGS)
    run = TrainingRun.objects.get()
    assert run.status == TrainingRun.Status.PAUSED and run.epoch_done == 1
    assert f"--resume {run.pk}" in output

    train("--resume", str(run.pk))

    run.refresh_from_db()
    assert (run.status, run.epoch_done, run.chunks_run) == ("succeeded", 2, 2)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope"], "no collection or training set named 'nope'"),
        (["999"], "no training set with id 999"),
        ([], "give a training set or collection, or --resume RUN_ID"),
        (["--resume", "42"], "no training run 42"),
        (["sprites", "--set", "dropout"], "--set 'dropout': use KEY=VALUE"),
        (["sprites", "--set", "dropout=3"], "dropout must be < 1"),
        (["sprites", "--batch-size=64"], "32 image(s), fewer than the batch size 64"),
    ],
)
def test_it_explains_bad_input_in_one_line(sprite_set, args, message):
    with pytest.raises(CommandError) as error:
        call_command("train", *args)

    assert message in str(error.value)
    assert not TrainingRun.objects.exists()


def test_it_refuses_mixed_sizes(db):
    training_set = make_sprite_set("mixed", count=10, sizes=[16] * 5 + [24] * 5)
    for token in training_set.tokens.all():
        token.image_width = token.image_height = 16 if int(token.token_id) < 5 else 24
        token.save()

    with pytest.raises(CommandError, match="mixes image sizes"):
        call_command("train", str(training_set.pk), "--batch-size=4")
