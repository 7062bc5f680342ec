"""What a trait value means, defined once for the catalog, analytics and generation (pure
Python: the rarity code and the web-side trait requests import it without Django)."""

# The value a token holds for a trait type it lacks, as marketplaces and rarity.tools write it.
NO_TRAIT = "none"
# Values that are no real trait, compared lower-cased: they do not count towards a token's
# trait count, and a generator never learns them as a trait (TokenTrait.pairs_for drops them).
NONE_VALUES = frozenset({NO_TRAIT, "null", ""})


def is_no_trait(value) -> bool:
    """True for a value that says "this token lacks the trait" ("None", "null", blank, None)."""
    return value is None or str(value).strip().lower() in NONE_VALUES
