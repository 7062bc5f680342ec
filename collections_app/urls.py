from django.urls import path

from . import views

app_name = "collections"

urlpatterns = [
    path("", views.home, name="home"),
]
