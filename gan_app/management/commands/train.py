"""manage.py train TRAINING_SET_OR_COLLECTION [--resolution R] [--epochs N] ... [--publish]
manage.py train --resume RUN_ID

Trains in this process, without Celery, writing the same rows a worker would (TrainingRun,
Checkpoint, grids, losses), so the run page shows it and ``--resume`` or the admin's Resume
button can continue it. ``--queue`` hands the run to the ``train`` workers instead.
"""

import json
import sys

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from gan_app.models import TrainingRun
from gan_app.training import chunks
from gan_app.training import runs as training

OPTIONS = {
    "resolution": "resolution",
    "epochs": "epochs",
    "batch_size": "batch_size",
    "checkpoint_every": "checkpoint_every",
    "g_lr": "g_learning_rate",
    "d_lr": "d_learning_rate",
    "seed": "seed",
    "latent_dim": "latent_dim",
}


class Command(BaseCommand):
    help = "Train a GAN on a training set (ID, COLLECTION/SET) or a whole collection (slug)."

    def add_arguments(self, parser):
        parser.add_argument(
            "target", nargs="?", help="Training set id, COLLECTION/SET, or collection slug."
        )
        parser.add_argument("--resume", type=int, metavar="RUN_ID", help="Continue a run.")
        parser.add_argument(
            "--preset",
            choices=["nff", "seed-dcgan"],
            help="Recipe (default: the TRAIN_DEFAULT_PRESET setting, nff).",
        )
        parser.add_argument("--resolution", type=int, choices=[32, 64, 128])
        parser.add_argument("--epochs", type=int)
        parser.add_argument("--batch-size", type=int)
        parser.add_argument("--checkpoint-every", type=int)
        parser.add_argument("--g-lr", type=float, help="Generator learning rate.")
        parser.add_argument("--d-lr", type=float, help="Discriminator learning rate.")
        parser.add_argument("--latent-dim", type=int)
        parser.add_argument("--seed", type=int)
        parser.add_argument("--augment", action="store_true", help="DiffAugment (small sets).")
        parser.add_argument(
            "--conditional",
            action="store_true",
            help="Trait-conditioned: learn the tokens' traits (generate --trait TYPE=VALUE).",
        )
        parser.add_argument(
            "--set",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="Any other hyperparameter (VALUE as JSON, e.g. dropout=0.4).",
        )
        parser.add_argument("--name", default="")
        parser.add_argument(
            "--seconds", type=float, help="Stop (paused, resumable) after about this long."
        )
        parser.add_argument(
            "--publish", action="store_true", help="Publish the final epoch when done."
        )
        parser.add_argument("--queue", action="store_true", help="Queue on Celery workers.")

    def handle(self, *args, target, resume, seconds, publish, queue, **options):
        if (target is None) == (resume is None):
            raise CommandError("give a training set or collection, or --resume RUN_ID")
        try:
            if resume is not None:
                run = self.resume(resume, publish, queue)
            else:
                run = training.create_run(
                    training.training_set_for(target),
                    name=options["name"],
                    auto_publish=publish,
                    enqueue=queue,
                    **self.hyperparameters(options),
                )
        except training.TrainingSetupError as exc:
            raise CommandError(str(exc)) from None
        if queue:
            self.stdout.write(f"Run {run.pk} queued on the train workers.")
            return
        self.train(run, seconds)

    def hyperparameters(self, options):
        values = {key: options[opt] for opt, key in OPTIONS.items() if options[opt] is not None}
        if options["preset"]:
            values["preset"] = options["preset"]
        if options["augment"]:
            values["augment"] = True
        if options["conditional"]:
            values["conditional"] = True
        for item in options["set"]:
            key, sep, raw = item.partition("=")
            if not sep or not key:
                raise CommandError(f"--set {item!r}: use KEY=VALUE")
            try:
                values[key.strip()] = json.loads(raw)
            except ValueError:
                values[key.strip()] = raw  # a bare string, e.g. background=#000000
        return values

    def resume(self, run_id, publish, queue):
        run = TrainingRun.objects.filter(pk=run_id).first()
        if run is None:
            raise CommandError(f"no training run {run_id}")
        if publish and not run.auto_publish:
            TrainingRun.objects.filter(pk=run.pk).update(auto_publish=True)
        return training.resume_run(run, enqueue=queue)

    def train(self, run, seconds):
        bar = tqdm(
            total=run.epochs_total,
            initial=run.epoch_done,
            unit="epoch",
            disable=not sys.stderr.isatty(),
            file=sys.stderr,
        )

        def on_epoch(progress):
            bar.n = progress.epoch
            losses = progress.losses
            bar.set_postfix(
                g=f"{losses['g_loss']:.3f}",
                d=f"{losses['d_loss']:.3f}",
                img_s=f"{progress.images_per_second:,.0f}",
                refresh=False,
            )
            bar.refresh()

        try:
            chunks.run_chunk(
                run.pk, run.task_id, max_seconds=seconds, chain=False, on_epoch=on_epoch
            )
        except KeyboardInterrupt:
            chunks.release_interrupted(run, run.task_id)
            raise CommandError(
                f"interrupted; run {run.pk} is paused at its last checkpoint "
                f"(continue with: manage.py train --resume {run.pk})"
            ) from None
        finally:
            bar.close()
        self.report(run)

    def report(self, run):
        run.refresh_from_db()
        if run.status == TrainingRun.Status.FAILED:
            raise CommandError(f"run {run.pk} failed: {run.error}")
        latest = run.latest_checkpoint()
        self.stdout.write(
            f"Run {run.pk}: {run.get_status_display().lower()} at epoch {run.epoch_done} of "
            f"{run.epochs_total} ({run.checkpoints.count()} checkpoint(s), latest epoch "
            f"{latest.epoch if latest else '-'})"
        )
        if run.status == TrainingRun.Status.PAUSED:
            self.stdout.write(f"Continue with: manage.py train --resume {run.pk}")
        for generator in run.generators.all():
            # Unlisted until the quality gate passes its evaluation (or an admin lists it).
            listed = "" if generator.is_listed else " (unlisted until the quality gate passes)"
            self.stdout.write(f"Published generator: {generator.slug}{listed}")
