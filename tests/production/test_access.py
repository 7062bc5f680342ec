"""Who may do what: the admin is for staff with permissions, every POST needs its CSRF token,
and a burst of Generate clicks from one client stops at the rate limit."""

import re
import secrets
import string
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import URLResolver, get_resolver, reverse

from collections_app.models import Collection, IngestJob, TrainingSet
from gan_app.models import GenerationRequest, TrainingRun

from .conftest import tiny_generator

SAMPLE = {
    "path": "1",
    "int": "1",
    "slug": "x",
    "str": "1",
    "seed": "1",
    "uuid": "00000000-0000-4000-8000-000000000000",
}
# What a form in the admin might take: enough that a view which forgot its checks would act.
POST_DATA = {
    "slug": "intruder",
    "name": "Intruder",
    "api_url": "http://127.0.0.1:9/",
    "images_url": "s3://seed/intruder_archive.zip",
    "metadata_url": "s3://seed/intruder_metadata_archive.zip",
    "sales": "on",
    "collection": "1",
    "action": "reingest",
    "_selected_action": ["1"],
    "post": "yes",
    "generator": "x",
    "seed": "1",
}


def routes():
    """Every route of the site with sample arguments (admin included; regex routes left out)."""

    def walk(patterns, prefix):
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns, route)
            elif "(?P" not in route and "^" not in route:
                yield "/" + re.sub(
                    r"<(?:(\w+):)?\w+>", lambda m: SAMPLE[m.group(1) or "str"], route
                )

    return sorted(set(walk(get_resolver().url_patterns, "")))


# Logging in and out is open to anyone; everything else in the admin is for staff, and so
# are private files (checkpoints, generators, uploads).
ADMIN_ROUTES = [
    r
    for r in routes()
    if r.startswith(("/admin/", "/private-media/")) and r not in ("/admin/login/", "/admin/logout/")
]


def row_counts():
    return {model._meta.label: model._default_manager.count() for model in apps.get_models()}


@pytest.fixture
def site_rows(db):
    """One of each thing an intruder might act on (pk 1 where the sample URLs point)."""
    collection = Collection.objects.create(slug="owned", name="Owned")
    IngestJob.objects.create(kind=IngestJob.Kind.DEMO, collection=collection, params={})
    return collection


def test_it_lists_the_admin_routes_it_guards():
    assert "/admin/collections_app/collection/import-archive/" in ADMIN_ROUTES
    assert "/admin/collections_app/collection/ingest-opensea/" in ADMIN_ROUTES
    assert "/admin/gan_app/trainingrun/start/" in ADMIN_ROUTES
    assert "/admin/operations/" in ADMIN_ROUTES
    assert "/private-media/1" in ADMIN_ROUTES
    assert len(ADMIN_ROUTES) > 80


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["anonymous", "not staff"])
def test_it_sends_outsiders_to_the_login_page_and_does_nothing(who, site_rows):
    client = Client()
    if who == "not staff":
        user = get_user_model().objects.create_user("visitor", "v@example.com", "pw")
        client.force_login(user)
    before = row_counts()

    answers = {}
    for route in ADMIN_ROUTES:
        for method in (client.get, client.post):
            response = method(route, POST_DATA if method == client.post else None)
            answers[(method.__name__, route)] = (response.status_code, response.get("Location"))

    wrong = {
        key: answer
        for key, answer in answers.items()
        if answer[0] != 302 or not answer[1].startswith("/admin/login/")
    }
    assert not wrong
    assert row_counts() == before


@pytest.mark.django_db
def test_it_lets_staff_without_permissions_start_nothing(site_rows):
    staff = get_user_model().objects.create_user("clerk", "c@example.com", "pw", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_collection"))
    client = Client()
    client.force_login(staff)
    jobs = IngestJob.objects.count()

    for name in ("ingest_opensea", "import_archive"):
        response = client.post(reverse(f"admin:collections_app_collection_{name}"), POST_DATA)
        assert response.status_code in (302, 403)
        assert response.get("Location", "") in ("", reverse("admin:index"))
    build = client.post(
        reverse("admin:collections_app_trainingset_build"),
        {"collection": site_rows.pk, "name": "stolen"},
    )
    action = client.post(
        reverse("admin:collections_app_collection_changelist"),
        {"action": "reingest", "_selected_action": [site_rows.pk]},
    )
    run = client.post(reverse("admin:gan_app_trainingrun_start"), POST_DATA)

    assert build.status_code == 403 and run.status_code == 403
    assert action.status_code in (200, 302, 403)
    assert IngestJob.objects.count() == jobs
    assert not TrainingSet.objects.exists() and not TrainingRun.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["anonymous", "superuser"])
def test_it_refuses_every_post_without_its_csrf_token(who, site_rows):
    client = Client(enforce_csrf_checks=True)
    if who == "superuser":
        client.force_login(get_user_model().objects.create_superuser("boss", "b@x.com", "pw"))
    before = row_counts()

    refused = {route: client.post(route, POST_DATA).status_code for route in routes()}

    assert {route: code for route, code in refused.items() if code != 403} == {}
    assert row_counts() == before
    page = client.post(reverse("gan:generate"), POST_DATA)
    assert b"CSRF" in page.content


# --- Rate limit under a burst, through a real web server ------------------------------------


@pytest.fixture
def web_server(web_servers):
    """The site as bin/run serves it, on the test database, limit 5 a minute."""
    return web_servers(GENERATION_RATE_LIMIT="5/m")


def post_generate(base, slug):
    token = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(32))
    request = urllib.request.Request(
        f"{base}/generate/",
        data=f"generator={slug}".encode(),
        headers={
            "Accept": "application/json",
            "Content-Type": "application/x-www-form-urlencoded",
            "Cookie": f"csrftoken={token}",
            "X-CSRFToken": token,
            "Referer": f"{base}/",
        },
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_it_holds_the_rate_limit_under_a_burst_from_one_client(web_server):
    collection = Collection.objects.create(slug="burst", name="Burst")
    generator = tiny_generator(collection, slug="burst-v1")

    with ThreadPoolExecutor(24) as pool:
        codes = list(pool.map(lambda _: post_generate(web_server, generator.slug), range(40)))

    assert sorted(codes) == [202] * 5 + [429] * 35
    assert GenerationRequest.objects.count() == 5
