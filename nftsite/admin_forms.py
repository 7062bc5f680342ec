"""Admin pages around one form, for every app's ModelAdmin (ground floor: imports no app)."""

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
