"""What a trait value means, defined once for the catalog, analytics and generation (pure
Python: the rarity code and the web-side trait requests import it without Django)."""

# The value a token holds for a trait type it lacks, as marketplaces and rarity.tools write it.
NO_TRAIT = "none"
# Values that are no real trait: they do not count towards a token's trait count.
NONE_VALUES = frozenset({NO_TRAIT, ""})
