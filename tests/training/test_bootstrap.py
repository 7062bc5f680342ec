"""manage.py bootstrap on an empty site queues one short, auto-published demo training run."""

import io

import pytest
from django.core.management import call_command

from gan_app.models import TrainingRun

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


def test_it_queues_a_demo_run_once(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as queued:
        call_command("bootstrap", stdout=io.StringIO())

    run = TrainingRun.objects.get()
    assert (run.resolution, run.auto_publish, run.status) == (32, True, "queued")
    assert run.training_set.collection.slug == "pixel-fakes"
    assert run.training_set.token_count == run.training_set.collection.tokens.count() > 0
    # The first chunk, sent by name once the rows are committed.
    assert [c for c in queued if c.__qualname__.startswith("dispatch_after_commit")]

    call_command("bootstrap", stdout=io.StringIO())
    assert TrainingRun.objects.count() == 1


def test_it_skips_the_demo_run_when_told(settings):
    call_command("bootstrap", "--no-training", stdout=io.StringIO())
    assert not TrainingRun.objects.exists()
