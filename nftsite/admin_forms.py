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
