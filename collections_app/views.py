from django.shortcuts import render

from .models import Collection


def home(request):
    collections = Collection.objects.filter(is_public=True).order_by("name")
    return render(request, "home.html", {"collections": collections})
