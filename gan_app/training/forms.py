"""The admin's "Start a training run" form: hyperparameters checked by the training services."""

import json

from django import forms
from django.conf import settings

from collections_app.models import Collection, TrainingSet
from nftsite.admin_forms import sentence

from . import runs as training


class StartRunForm(forms.Form):
    training_set = forms.ModelChoiceField(
        queryset=TrainingSet.objects.select_related("collection").order_by("collection", "name")
    )
    name = forms.CharField(max_length=200, required=False)
    resolution = forms.TypedChoiceField(
        choices=[(32, "32 px"), (64, "64 px"), (128, "128 px")], coerce=int, initial=32
    )
    preset = forms.ChoiceField(
        choices=[
            ("nff", "nff: EMA generator + R1 penalty (best measured)"),
            ("seed-dcgan", "seed-dcgan: the original project's DCGAN"),
        ],
        initial=lambda: settings.TRAIN_DEFAULT_PRESET,
        required=False,  # left out: the site's default recipe (TRAIN_DEFAULT_PRESET)
        help_text="The recipe; the fields below and 'More hyperparameters' go on top of it.",
    )
    epochs = forms.IntegerField(min_value=1, initial=100)
    batch_size = forms.IntegerField(
        min_value=1, initial=64, help_text="Images per step: at most the training set's images."
    )
    checkpoint_every = forms.IntegerField(
        min_value=1, initial=15, help_text="Epochs between checkpoints (each has a sample grid)."
    )
    g_learning_rate = forms.FloatField(initial=0.0004, label="Generator learning rate")
    d_learning_rate = forms.FloatField(initial=0.0002, label="Discriminator learning rate")
    seed = forms.IntegerField(min_value=0, initial=0)
    augment = forms.BooleanField(required=False, help_text="DiffAugment: for small sets.")
    conditional = forms.BooleanField(
        required=False,
        label="Trait-conditioned",
        help_text="Learn the tokens' traits too, so visitors can ask for them.",
    )
    trait_min_count = forms.IntegerField(
        min_value=1,
        initial=5,
        required=False,
        help_text="Conditioned runs: trait values on fewer tokens are grouped as 'other'.",
    )
    auto_publish = forms.BooleanField(
        required=False, help_text="Publish the final epoch's generator when the run finishes."
    )
    extra = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        label="More hyperparameters",
        help_text='JSON, e.g. {"latent_dim": 128, "dropout": 0.4, "background": "#000000"}.',
    )

    HYPERPARAMETERS = (
        "preset",
        "resolution",
        "epochs",
        "batch_size",
        "checkpoint_every",
        "g_learning_rate",
        "d_learning_rate",
        "seed",
        "augment",
        "conditional",
        "trait_min_count",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        chosen = self._chosen_set()
        if chosen is not None and not self.is_bound:
            defaults = training.suggested_defaults(chosen)
            self.initial.update(
                batch_size=defaults["batch_size"],
                augment=defaults["augment"],
                conditional=defaults["conditional"],
            )
            self.fields["batch_size"].help_text = batch_help(chosen, defaults["image_count"])

    def set_defaults(self) -> dict:
        """Each offered set's suggested batch size, augmentation and conditioning, with the
        batch size's help text, by primary key (``sets``), and the form's own (``initial``):
        the page applies a set's when the admin picks it, and tells from them which fields
        were edited by hand."""
        sets = self.fields["training_set"].queryset
        by_pk = training.suggested_defaults_by_set(sets)
        return {
            "sets": {
                str(training_set.pk): {
                    **by_pk[training_set.pk],
                    "help": batch_help(training_set, by_pk[training_set.pk]["image_count"]),
                }
                for training_set in sets
            },
            "initial": {
                "batch_size": self.fields["batch_size"].initial,
                "augment": bool(self.fields["augment"].initial),
                "conditional": bool(self.fields["conditional"].initial),
            },
        }

    def _chosen_set(self):
        pk = self.initial.get("training_set")
        if not str(pk or "").isdigit():
            return None
        return TrainingSet.objects.filter(pk=pk).first()

    def clean_extra(self):
        raw = self.cleaned_data["extra"].strip()
        if not raw:
            return {}
        try:
            value = json.loads(raw)
        except ValueError as exc:
            raise forms.ValidationError(f"This is not valid JSON: {exc}.") from None
        if not isinstance(value, dict):
            raise forms.ValidationError('Give a JSON object, e.g. {"latent_dim": 128}.')
        return value

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        hyperparameters = {k: data[k] for k in self.HYPERPARAMETERS}
        hyperparameters.update(data.get("extra") or {})
        try:
            config = training.make_config(hyperparameters)
            training.check_training_set(data["training_set"], config)
        except training.TrainingSetupError as exc:
            raise forms.ValidationError(sentence(str(exc))) from None
        data["hyperparameters"] = hyperparameters
        return data


def batch_help(training_set, image_count: int) -> str:
    return f"{training_set} has {image_count} image(s); a batch is at most that many."


class GeneratorImportForm(forms.Form):
    file = forms.FileField(help_text="A {slug}_generator.zip exported by this or another site.")
    collection = forms.ModelChoiceField(
        queryset=Collection.objects.order_by("name"),
        required=False,
        help_text="Empty: the collection named in the file (created if missing).",
    )
    publish = forms.BooleanField(required=False, help_text="Publish at once.")
