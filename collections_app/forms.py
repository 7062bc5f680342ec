"""Forms: the collection page's token filters and the admin's build/ingest forms."""

from django import forms
from django.conf import settings
from django.db.models import F
from django.template.defaultfilters import filesizeformat

from nftsite.admin_forms import sentence

from .analytics.subsets import (
    RANK_FIELDS,
    SubsetError,
    SubsetSpec,
    filter_by_traits,
    parse_trait,
    trait_groups,
)
from .ingest.archives import derive_slug
from .models import USD_AMOUNT, Trait

# key: (label, field, descending). Price sorts list priced tokens only, so PostgreSQL can walk
# the (collection, last_sale_usd) index instead of sorting the whole collection.
SORTS = {
    "rarity": ("Rarest first", "rarity_rank", False),
    "openrarity": ("Rarest (OpenRarity)", "ic_rank", False),
    "price_desc": ("Priciest first (sold)", "last_sale_usd", True),
    "price_asc": ("Cheapest first (sold)", "last_sale_usd", False),
    "number": ("Token number", None, False),
}
# A trait filter matching fewer tokens than this share of the collection is applied first.
SELECTIVE_SHARE = 0.1


class TraitIdsField(forms.TypedMultipleChoiceField):
    """Trait ids; any id is accepted (the list offered may be capped) and checked later."""

    def valid_value(self, value):
        return True


class TokenFilterForm(forms.Form):
    """The collection page's token grid filters (GET). An invalid field is ignored, not fatal."""

    trait = TraitIdsField(coerce=int, required=False, label="Traits")
    # The column's own precision: 1e999999 would overflow PostgreSQL's numeric (a 500).
    min_usd = forms.DecimalField(required=False, min_value=0, label="Min price (USD)", **USD_AMOUNT)
    max_usd = forms.DecimalField(required=False, min_value=0, label="Max price (USD)", **USD_AMOUNT)
    max_rank = forms.IntegerField(required=False, min_value=1, label="Rarity rank up to")
    sold = forms.BooleanField(required=False, label="Sold only")
    sort = forms.ChoiceField(
        choices=[(k, label) for k, (label, *_) in SORTS.items()], required=False, label="Sort by"
    )

    def __init__(self, data, collection):
        super().__init__(data)
        self.collection = collection

    @property
    def values(self) -> dict:
        """The fields that validated (Django keeps them even when others did not)."""
        self.is_valid()
        return self.cleaned_data

    @property
    def ordering(self) -> str:
        return self.values.get("sort") or "rarity"

    @property
    def narrows(self) -> bool:
        """Whether the grid shows fewer tokens than the whole collection."""
        values = self.values
        return (
            bool(values.get("trait"))
            or self.ordering.startswith("price")
            or any(
                values.get(k) not in (None, False, "")
                for k in ("min_usd", "max_usd", "max_rank", "sold")
            )
        )

    def exact_count(self, total, selected_traits, multi_valued_types):
        """The number of matching tokens when it is known without counting, else None.

        Needs fresh analytics (``total`` and Trait.count then match the rows). Known: no
        filter at all, or only values of one trait type, which no token holds twice over.
        """
        values = self.values
        if total is None:
            return None
        if not self.narrows:
            return total
        others = self.ordering.startswith("price") or any(
            values.get(k) not in (None, False, "")
            for k in ("min_usd", "max_usd", "max_rank", "sold")
        )
        types = {t.trait_type for t in selected_traits}
        if others or len(types) != 1:
            return None
        if len(selected_traits) > 1 and types & set(multi_valued_types):
            return None
        return sum(t.count for t in selected_traits)

    def selected_traits(self) -> list[Trait]:
        ids = self.values.get("trait")
        if not ids:
            return []
        return list(Trait.objects.filter(collection=self.collection, pk__in=ids))

    def apply(self, queryset, selected_traits, total=None):
        """Filter and order ``queryset``; ``total`` (tokens in the collection) guides the plan."""
        data = self.values
        by_type: dict[str, list[Trait]] = {}
        for trait in selected_traits:
            by_type.setdefault(trait.trait_type, []).append(trait)
        queryset = filter_by_traits(
            queryset, {t: [trait.pk for trait in traits] for t, traits in by_type.items()}
        )
        if data.get("min_usd") is not None:
            queryset = queryset.filter(last_sale_usd__gte=data["min_usd"])
        if data.get("max_usd") is not None:
            queryset = queryset.filter(last_sale_usd__lte=data["max_usd"])
        _label, field, descending = SORTS[self.ordering]
        if data.get("max_rank"):
            rank_field = RANK_FIELDS["openrarity" if self.ordering == "openrarity" else "rarity"]
            queryset = queryset.filter(**{f"{rank_field}__lte": data["max_rank"]})
        if data.get("sold"):
            queryset = queryset.filter(last_sale_amount__isnull=False)
        if self.ordering.startswith("price"):
            queryset = queryset.filter(last_sale_usd__isnull=False)
        if field is None:
            return queryset.order_by("token_number", "token_id")
        # At most this many tokens can match the trait filter (the rarest selected type).
        matches = min((sum(t.count for t in traits) for traits in by_type.values()), default=None)
        key = F(field)
        if matches is not None and total and matches < SELECTIVE_SHARE * total:
            # A rare trait: walking the sort index would visit most of the collection to find
            # a page of matches, so hide the index (``+ 0``) and let PostgreSQL fetch the few
            # matching tokens through the trait index, then sort them.
            key = F(field) + 0
        order = key.desc() if descending else key.asc(nulls_last=True)
        return queryset.order_by(order, "token_number", "token_id")


class TraitPairsField(forms.Field):
    """TYPE=VALUE pairs: the picker's ticked boxes, or lines of text, one pair per line (so a
    typed list still works). Each is parsed and checked against the collection in clean()."""

    widget = forms.MultipleHiddenInput

    def __init__(self, **kwargs):
        super().__init__(required=False, **kwargs)

    def to_python(self, value):
        items = [value] if isinstance(value, str) else list(value or ())
        return [line.strip() for item in items for line in str(item).splitlines() if line.strip()]


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
    # Ticked in the trait picker (one TYPE=VALUE per box); lines of text are read too.
    include_traits = TraitPairsField(
        label="Only tokens with",
        help_text="Values of one type are alternatives; different types must all match.",
    )
    exclude_traits = TraitPairsField(
        label="Leave out tokens with", help_text="A token holding any of these is left out."
    )
    sold_only = forms.BooleanField(required=False)
    # Unticked (the default), tokens carrying an excluded (offensive) trait value are left out.
    keep_excluded = forms.BooleanField(
        required=False,
        label="Keep excluded traits",
        help_text="Keep tokens that carry a trait value an admin excluded as offensive.",
    )

    def __init__(self, *args, preview=False, **kwargs):
        from .models import Collection

        super().__init__(*args, **kwargs)
        self.fields["collection"].queryset = Collection.objects.order_by("name")
        # A preview needs filters, not yet a name.
        self.fields["name"].required = not preview

    def chosen_collection(self):
        """The collection the form is about, chosen or posted, even when the form is invalid."""
        try:
            return self.fields["collection"].clean(self["collection"].value())
        except forms.ValidationError:
            return None

    def ticked(self, name) -> list[str]:
        return self.fields[name].to_python(self[name].value())

    def trait_picker(self) -> dict | None:
        """The picker's content for the chosen collection: its trait values by type, each with
        whether it is ticked to include or exclude. Ticked pairs the collection does not list
        come back as ``unknown``, still ticked, so they are submitted (and refused) again."""
        collection = self.chosen_collection()
        if collection is None:
            return None
        groups, left_out = trait_groups(collection)
        include, exclude = self.ticked("include_traits"), self.ticked("exclude_traits")
        wanted = {_key(p) for p in include}, {_key(p) for p in exclude}
        listed = set()
        for group in groups:
            ticked = False
            for value in group["values"]:
                value["pair"] = f"{group['trait_type']}={value['value']}"
                key = _key(value["pair"])
                listed.add(key)
                value["include"], value["exclude"] = key in wanted[0], key in wanted[1]
                ticked = ticked or value["include"] or value["exclude"]
            group["open"] = ticked
        unknown = [
            {"pair": pair, "include": kind == "include", "exclude": kind == "exclude"}
            for kind, pairs in (("include", include), ("exclude", exclude))
            for pair in pairs
            if _key(pair) not in listed
        ]
        return {
            "collection": collection,
            "groups": groups,
            "left_out": left_out,
            "unknown": unknown,
        }

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
                leave_out_excluded=not data.get("keep_excluded"),
            )
            spec.validate()
        except SubsetError as exc:
            raise forms.ValidationError(sentence(str(exc))) from None
        data["spec"] = spec
        return data


def _traits(pairs):
    return [parse_trait(pair) for pair in pairs or ()]


def _key(pair: str) -> str:
    """A pair as the picker matches it: case and spaces around the parts do not count."""
    trait_type, _sep, value = pair.partition("=")
    return f"{trait_type.strip().lower()}={value.strip().lower()}"


class OpenSeaIngestForm(forms.Form):
    slug = forms.SlugField(
        max_length=200, help_text="The collection's slug on OpenSea, e.g. boredapeyachtclub."
    )
    api_url = forms.URLField(
        required=False,
        assume_scheme="https",
        label="API URL",
        help_text=f"Leave empty for {settings.OPENSEA_API_URL}. The API key is the worker's "
        "OPENSEA_API_KEY setting; it is never entered or stored here.",
    )
    sales = forms.BooleanField(required=False, initial=True, label="Fetch sale events (prices)")


class ArchiveImportForm(forms.Form):
    images_file = forms.FileField(required=False, label="Images archive (.zip)")
    metadata_file = forms.FileField(required=False, label="Metadata archive (.zip)")
    images_url = forms.CharField(
        required=False, label="…or images archive URL", help_text="s3://bucket/key"
    )
    metadata_url = forms.CharField(
        required=False, label="…or metadata archive URL", help_text="s3://bucket/key"
    )
    slug = forms.SlugField(
        required=False,
        help_text="Collection slug; by default taken from the images archive's name "
        "({slug}_archive.zip).",
    )

    def clean(self):
        data = super().clean()
        for kind in ("images", "metadata"):
            upload, url = data.get(f"{kind}_file"), (data.get(f"{kind}_url") or "").strip()
            if bool(upload) == bool(url):
                self.add_error(f"{kind}_file", f"Upload the {kind} archive or give its URL.")
                continue
            if url and not url.startswith("s3://"):
                self.add_error(f"{kind}_url", "Only s3://bucket/key URLs are supported.")
            if upload and upload.size > settings.MAX_ARCHIVE_UPLOAD_BYTES:
                self.add_error(
                    f"{kind}_file",
                    f"{filesizeformat(upload.size)} is over the upload limit of "
                    f"{filesizeformat(settings.MAX_ARCHIVE_UPLOAD_BYTES)}; put it in S3 instead.",
                )
            data[f"{kind}_url"] = url
        if not self.errors and not data.get("slug"):
            images = data.get("images_file")
            data["slug"] = derive_slug(images.name if images else data["images_url"])
            if not data["slug"]:
                self.add_error("slug", "Cannot tell the slug from the archive name; enter it.")
        return data
