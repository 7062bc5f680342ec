"""The admin site: Django's, plus an Operations page (queues, workers, running tasks)."""

from django.contrib import admin
from django.template.response import TemplateResponse
from django.urls import path

from . import ops


class SiteAdmin(admin.AdminSite):
    site_header = "Non-Fungible Fakes admin"
    site_title = "Non-Fungible Fakes"

    def get_urls(self):
        return [
            path("operations/", self.admin_view(self.operations_view), name="operations"),
            *super().get_urls(),
        ]

    def operations_view(self, request):
        context = {**self.each_context(request), "title": "Operations", **ops.snapshot()}
        return TemplateResponse(request, "admin/operations.html", context)
