from django.urls import path

from . import views

app_name = "collections"

urlpatterns = [
    path("", views.home, name="home"),
    path("compare/", views.compare, name="compare"),
    path("c/<slug:slug>/", views.detail, name="detail"),
    path("c/<slug:slug>/t/<str:token_id>/", views.token, name="token"),
]
