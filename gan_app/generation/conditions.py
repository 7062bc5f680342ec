"""Trait requests for conditional generators, on the web side (no TensorFlow in page views).

A conditional generator's manifest holds its frozen trait vocabulary (``conditions``, written
by ``gan_app.gan.conditioning.ConditionVocabulary.to_json``). Pages read the choices from it and
check a visitor's request against it here, producing the same canonical request and
``condition_key`` as ``ConditionVocabulary.check``/``condition_key`` do in the worker (a test
holds the two to agreement); the worker resolves "any" per seed from the joint distribution.
"""

import dataclasses
import hashlib
from dataclasses import dataclass

from collections_app.models import Trait
from collections_app.traits import NO_TRAIT

ANY = "any"
NONE = NO_TRAIT  # the group of tokens lacking a type
OTHER = "other"  # the group of a type's rare values
MAX_KEY_LENGTH = 500  # GeneratedImage.condition_key


class TraitRequestError(ValueError):
    """A trait request this generator cannot honour; the message lists the valid choices."""


@dataclass(frozen=True)
class TraitChoice:
    """One trait type of a conditional generator, as a page offers it."""

    name: str
    values: tuple[str, ...]
    multi: bool
    rare: tuple[str, ...] = ()  # the values grouped as "other"
    selected: tuple[str, ...] = ()  # preselected in the page's select ("any" when empty)
    excluded: tuple[str, ...] = ()  # excluded by an admin (content safeguard): never offered

    @property
    def field_name(self) -> str:
        return f"trait.{self.name}"


def trait_choices(generator) -> list[TraitChoice]:
    """The trait types and values a visitor can ask this generator for ([] if unconditional);
    values an admin excluded are left out of ``values`` (kept in ``excluded`` to name them)."""
    vocabulary = (generator.manifest or {}).get("conditions") if generator.conditional else None
    if not vocabulary:
        return []
    banned = Trait.excluded_pairs(generator.collection_id)
    return [
        TraitChoice(
            t["name"],
            tuple(v for v in t["values"] if (t["name"], v) not in banned),
            bool(t["multi"]),
            tuple(t.get("rare", ())),
            excluded=tuple(v for v in t["values"] if (t["name"], v) in banned),
        )
        for t in vocabulary["types"]
    ]


def clean_traits(generator, traits: dict | None) -> tuple[dict[str, list[str]], str]:
    """``(request, condition_key)``: the request as ``{type: [values]}`` with "any" types left
    out, and its canonical key ("" when nothing is asked). ``TraitRequestError`` otherwise."""
    traits = {k: v for k, v in (traits or {}).items() if not _is_any(v)}
    choices = {c.name: c for c in trait_choices(generator)}
    if not choices:
        if traits:
            raise TraitRequestError(
                f"{generator.name} is not trait-conditioned: it takes no traits"
            )
        return {}, ""
    lowered = {name.lower(): c for name, c in choices.items()}
    request = {}
    for name, wanted in traits.items():
        choice = choices.get(name) or lowered.get(str(name).strip().lower())
        if choice is None:
            raise TraitRequestError(
                f"unknown trait type {name!r}; this generator knows "
                + ", ".join(repr(n) for n in choices)
            )
        values = [wanted] if isinstance(wanted, str) else list(wanted)
        picked = sorted({_value(choice, v) for v in values})
        if len(picked) > 1 and not choice.multi:
            raise TraitRequestError(f"trait {choice.name!r} takes one value")
        if len(picked) > 1 and NONE in picked:
            raise TraitRequestError(f"trait {choice.name!r}: {NONE!r} cannot go with other values")
        request[choice.name] = picked
    key = ";".join(f"{name}={'+'.join(values)}" for name, values in sorted(request.items()))
    if len(key) > MAX_KEY_LENGTH:
        key = "sha256:" + hashlib.sha256(key.encode()).hexdigest()
    return request, key


def _is_any(value) -> bool:
    return value is None or (isinstance(value, str) and value.strip().lower() in ("", ANY))


def _value(choice: TraitChoice, value) -> str:
    text = str(value).strip()
    for banned in choice.excluded:
        if banned.lower() == text.lower():
            raise TraitRequestError(
                f"{choice.name} {banned!r} is excluded on this site (content safeguard): "
                "it cannot be generated"
            )
    for known in choice.values:
        if known.lower() == text.lower():
            return known
    raise TraitRequestError(
        f"unknown value {text!r} for trait {choice.name!r}; valid values: "
        + ", ".join(repr(v) for v in choice.values)
        + f", or {ANY!r}"
    )


def describe(request: dict[str, list[str]]) -> str:
    """ "eyes: Laser · headwear: Cap" for captions ("" when nothing was asked)."""
    return " · ".join(f"{name}: {', '.join(values)}" for name, values in sorted(request.items()))


def is_seen(choice: TraitChoice | None, value: str, read: set[str]) -> bool:
    """Whether a requested value is among the values a classifier read for its type: "none"
    when it read none, "other" when it read one of the grouped rare values (as
    ``gan_app.gan.conditioning.trait_hit_rate`` counts hits)."""
    if value == NONE:
        return not read
    if value == OTHER and choice is not None:
        return bool(read & set(choice.rare))
    return value in read


def choices_for_key(generator, key: str) -> list[TraitChoice]:
    """``trait_choices`` with the values of a condition key preselected (an image page's
    panel offers to make exactly that image); a key that does not parse selects nothing."""
    selected = {}
    if key and not key.startswith("sha256:"):
        for part in key.split(";"):
            name, _, values = part.partition("=")
            selected[name] = tuple(values.split("+"))
    return [
        dataclasses.replace(c, selected=selected.get(c.name, ())) for c in trait_choices(generator)
    ]
