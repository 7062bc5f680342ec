from django import forms
from django.db.models import F

from .models import Trait
from .subsets import RANK_FIELDS, SubsetError, SubsetSpec, filter_by_traits, parse_trait

SORTS = {
    "rarity": ("Rarest first", [F("rarity_rank").asc(nulls_last=True)]),
    "openrarity": ("Rarest (OpenRarity)", [F("ic_rank").asc(nulls_last=True)]),
    "price_desc": ("Priciest first", [F("last_sale_usd").desc(nulls_last=True)]),
    "price_asc": ("Cheapest first", [F("last_sale_usd").asc(nulls_last=True)]),
    "number": ("Token number", []),
}


class TraitIdsField(forms.TypedMultipleChoiceField):
    """Trait ids; any id is accepted (the list offered may be capped) and checked later."""

    def valid_value(self, value):
        return True


class TokenFilterForm(forms.Form):
    """The collection page's token grid filters (GET). An invalid field is ignored, not fatal."""

    trait = TraitIdsField(coerce=int, required=False, label="Traits")
    min_usd = forms.DecimalField(required=False, min_value=0, label="Min price (USD)")
    max_usd = forms.DecimalField(required=False, min_value=0, label="Max price (USD)")
    max_rank = forms.IntegerField(required=False, min_value=1, label="Rarity rank up to")
    sold = forms.BooleanField(required=False, label="Sold only")
    sort = forms.ChoiceField(
        choices=[(k, label) for k, (label, _) in SORTS.items()], required=False, label="Sort by"
    )

    def __init__(self, data, collection, trait_choices):
        super().__init__(data)
        self.collection = collection
        self.fields["trait"].choices = trait_choices

    @property
    def values(self) -> dict:
        """The fields that validated (Django keeps them even when others did not)."""
        self.is_valid()
        return self.cleaned_data

    def selected_traits(self) -> list[Trait]:
        ids = self.values.get("trait")
        if not ids:
            return []
        return list(Trait.objects.filter(collection=self.collection, pk__in=ids))

    def apply(self, queryset, selected_traits):
        data = self.values
        by_type: dict[str, list[int]] = {}
        for trait in selected_traits:
            by_type.setdefault(trait.trait_type, []).append(trait.pk)
        queryset = filter_by_traits(queryset, by_type)
        if data.get("min_usd") is not None:
            queryset = queryset.filter(last_sale_usd__gte=data["min_usd"])
        if data.get("max_usd") is not None:
            queryset = queryset.filter(last_sale_usd__lte=data["max_usd"])
        sort = data.get("sort") or "rarity"
        if data.get("max_rank"):
            field = RANK_FIELDS["openrarity" if sort == "openrarity" else "rarity"]
            queryset = queryset.filter(**{f"{field}__lte": data["max_rank"]})
        if data.get("sold"):
            queryset = queryset.filter(last_sale_amount__isnull=False)
        return queryset.order_by(*SORTS[sort][1], "token_number", "token_id")


class TrainingSetBuildForm(forms.Form):
    """Admin form that builds a TrainingSet through subsets.build_training_set."""

    collection = forms.ModelChoiceField(queryset=None)
    name = forms.CharField(max_length=200)
    top_price_pct = forms.FloatField(
        required=False,
        min_value=0.01,
        max_value=100,
        label="Top % by price",
        help_text="Of the sold tokens (the original project used 15).",
    )
    top_rarity_pct = forms.FloatField(
        required=False, min_value=0.01, max_value=100, label="Top % by rarity"
    )
    rarity_metric = forms.ChoiceField(
        choices=[("rarity", "rarity.tools"), ("openrarity", "OpenRarity")], initial="rarity"
    )
    min_rarity_rank = forms.IntegerField(required=False, min_value=1)
    max_rarity_rank = forms.IntegerField(required=False, min_value=1)
    include_traits = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="One TYPE=VALUE per line. Values of one type are alternatives; types combine.",
    )
    exclude_traits = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="One TYPE=VALUE per line.",
    )
    sold_only = forms.BooleanField(required=False)

    def __init__(self, *args, **kwargs):
        from .models import Collection

        super().__init__(*args, **kwargs)
        self.fields["collection"].queryset = Collection.objects.order_by("name")

    def clean(self):
        data = super().clean()
        try:
            spec = SubsetSpec(
                top_price_pct=data.get("top_price_pct"),
                top_rarity_pct=data.get("top_rarity_pct"),
                rarity_metric=data.get("rarity_metric") or "rarity",
                min_rarity_rank=data.get("min_rarity_rank"),
                max_rarity_rank=data.get("max_rarity_rank"),
                include_traits=_traits(data.get("include_traits")),
                exclude_traits=_traits(data.get("exclude_traits")),
                sold_only=bool(data.get("sold_only")),
            )
            spec.validate()
        except SubsetError as exc:
            raise forms.ValidationError(str(exc)) from None
        data["spec"] = spec
        return data


def _traits(text):
    return [parse_trait(line) for line in (text or "").splitlines() if line.strip()]
