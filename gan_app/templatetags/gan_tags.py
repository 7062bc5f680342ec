"""Constants and small helpers for the generation templates."""

from django import template

from gan_app.forms import BATCH_CHOICES
from gan_app.generation.requests import (
    MAX_BATCH,
    MAX_SEED,
    MAX_WALK_STEPS,
    MIN_WALK_STEPS,
    WALK_STEPS,
)

register = template.Library()


@register.simple_tag
def generation_limits():
    """``{% generation_limits as limits %}``: seed range, batch and walk sizes."""
    return {
        "max_seed": MAX_SEED,
        "max_batch": MAX_BATCH,
        "batch_choices": BATCH_CHOICES,
        "walk_steps": WALK_STEPS,
        "min_walk_steps": MIN_WALK_STEPS,
        "max_walk_steps": MAX_WALK_STEPS,
    }


@register.filter
def percent(value):
    """0..100 as a whole percentage."""
    try:
        return f"{float(value):.0f}%"
    except (TypeError, ValueError):
        return "—"


@register.filter
def trait_label(name):
    """``generator_version`` -> ``Generator version``."""
    return str(name).replace("_", " ").capitalize()


@register.filter
def short_seed(seed):
    """Long seeds as their last digits (a batch's seeds differ only there): ``…6211``."""
    text = str(seed)
    return text if len(text) <= 6 else "…" + text[-4:]


@register.simple_tag
def quality_badge(metrics):
    """``{% quality_badge generator.metrics as badge %}``: the plain-language summary, or None."""
    from gan_app.showcase import quality_badge

    return quality_badge(metrics)


@register.simple_tag
def large_download(png_url, resolution):
    """``{% large_download png_url resolution as large %}``: large.url, large.side (px)."""
    from gan_app.generation.upscale import large_download

    return large_download(png_url, resolution)


@register.filter
def with_version(generator):
    """The generator's name with its version, said once (``metadata.name_with_version``)."""
    from gan_app.generation.metadata import name_with_version

    return name_with_version(generator)
