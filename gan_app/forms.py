import re

from django import forms

from nftsite.parsing import IntegerParseError, is_ascii_int, parse_ascii_int

from .generation.conditions import TraitRequestError, clean_traits
from .generation.requests import (
    MAX_BATCH,
    MAX_SEED,
    MAX_WALK_STEPS,
    MIN_WALK_STEPS,
    WALK_STEPS,
    GenerationError,
    plan_seeds,
    served_generator,
)
from .models import GenerationRequest

SEED_HELP = f"A whole number from 0 to {MAX_SEED:,}. Empty: a random seed."
BATCH_CHOICES = [1, 4, 9, 16]  # what the panel offers; any count up to MAX_BATCH is valid


class SeedField(forms.Field):
    """A seed as typed: digits, with spaces, commas or underscores allowed as separators."""

    widget = forms.TextInput

    def __init__(self, **kwargs):
        super().__init__(required=False, **kwargs)

    def to_python(self, value):
        text = re.sub(r"[\s,_]", "", str(value or ""))
        if not text:
            return None
        if not is_ascii_int(text):  # "²".isdigit() is true, then int("²") raises
            raise forms.ValidationError(
                f"A seed is a whole number from 0 to {MAX_SEED:,}, written with the digits 0-9 "
                "(no signs or decimals)."
            )
        try:
            return parse_ascii_int(text, maximum=MAX_SEED, name="seed")
        except IntegerParseError:
            raise forms.ValidationError(
                f"{text[:24]} is too large: seeds go up to {MAX_SEED:,} so that every browser "
                "reads them exactly."
            ) from None


class GenerateForm(forms.Form):
    """What the Generate button sends: which generator, which seed(s), how many."""

    generator = forms.SlugField(max_length=200)
    kind = forms.ChoiceField(choices=GenerationRequest.Kind.choices, required=False)
    seed = SeedField(help_text=SEED_HELP)
    count = forms.IntegerField(
        min_value=1,
        max_value=MAX_BATCH,
        required=False,
        error_messages={
            "min_value": f"A batch has 1 to {MAX_BATCH} images.",
            "max_value": f"A batch has 1 to {MAX_BATCH} images.",
        },
    )
    seed_end = SeedField(label="To seed")
    steps = forms.IntegerField(min_value=MIN_WALK_STEPS, max_value=MAX_WALK_STEPS, required=False)

    TRAIT_PREFIX = "trait."  # one select per trait type: trait.<type> = value or "any"

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user  # staff may generate with an unlisted generator (a preview)

    def clean_generator(self):
        slug = self.cleaned_data["generator"]
        generator = served_generator(slug=slug)
        visible = generator is not None and generator.collection.is_public
        if not visible or not generator.visible_to(self.user):
            raise forms.ValidationError(f"There is no published generator called {slug!r}.")
        return generator

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        kind = data.get("kind") or (
            GenerationRequest.Kind.BATCH if (data.get("count") or 1) > 1 else "single"
        )
        try:
            data["seeds"] = plan_seeds(
                kind, data.get("seed"), data.get("count") or 1, data.get("seed_end")
            )
        except GenerationError as exc:
            raise forms.ValidationError(str(exc).capitalize() + ".") from None
        data["kind"] = kind
        data["steps"] = (data.get("steps") or WALK_STEPS) if kind == "walk" else None
        asked = {
            key[len(self.TRAIT_PREFIX) :]: self.data.getlist(key)
            if hasattr(self.data, "getlist")
            else self.data[key]
            for key in self.data
            if key.startswith(self.TRAIT_PREFIX)
        }
        asked = {k: v[0] if isinstance(v, list) and len(v) == 1 else v for k, v in asked.items()}
        try:
            data["traits"] = clean_traits(data["generator"], asked)[0]
        except TraitRequestError as exc:
            raise forms.ValidationError(str(exc)[:1].upper() + str(exc)[1:] + ".") from None
        return data

    def error_dict(self) -> dict[str, list[str]]:
        return {field: [str(e) for e in errors] for field, errors in self.errors.items()}

    def first_error(self) -> str:
        for field, errors in self.errors.items():
            label = "" if field == "__all__" else f"{self.fields[field].label or field.title()}: "
            return f"{label}{errors[0]}"
        return ""
