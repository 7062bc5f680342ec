"""Admin forms for starting ingests. They validate input; the work happens on a worker."""

from django import forms
from django.conf import settings
from django.template.defaultfilters import filesizeformat

from .ingest.archives import derive_slug


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
