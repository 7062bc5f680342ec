"""Admin pages around one form, for every app's ModelAdmin (ground floor: imports no app)."""

from django import forms
from django.template.response import TemplateResponse


def form_page(model_admin, request, template, title, form, **extra):
    """An admin page around one form (templates extend ``admin/nff_form.html``)."""
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        "title": title,
        "form": form,
        **extra,
    }
    return TemplateResponse(request, template, context)


class ReasonForm(forms.Form):
    """An admin decision that must say why (excluding trait values, listing a generator the
    quality gate did not pass): one required reason, kept with the decision."""

    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=2000)

    def __init__(self, *args, help_text="", **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["reason"].help_text = help_text  # the field strips: blank is refused


def sentence(text: str) -> str:
    """Service errors read as clauses ("training set x has ..."); forms show sentences."""
    text = text.strip()
    if not text:
        return text
    return text[0].upper() + text[1:] + ("" if text.endswith((".", "!", "?")) else ".")


def error_sentences(form) -> list[str]:
    """A bound form's errors as sentences, each field's prefixed with its label (for pages and
    JSON answers that show them away from the fields)."""
    messages = [sentence(str(message)) for message in form.non_field_errors()]
    for name, errors in form.errors.items():
        if name in form.fields:
            label = form.fields[name].label or name.replace("_", " ").capitalize()
            messages += [f"{label}: {sentence(str(message))}" for message in errors]
    return messages
