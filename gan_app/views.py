"""Public generation pages and endpoints: Generate, results, permalinks, generator, gallery."""

from contextlib import nullcontext

from asgiref.sync import sync_to_async
from django.core.files.storage import default_storage
from django.core.paginator import Paginator
from django.http import (
    FileResponse,
    Http404,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseNotModified,
    JsonResponse,
)
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import content_disposition_header
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from . import showcase
from .forms import GenerateForm
from .generation import conditions, moderation, notify, polls, ratelimit, upscale
from .generation import requests as generation
from .generation.metadata import absolute, batch_zip, dumps, file_stem
from .generation.requests import MAX_SEED, Walk
from .models import GeneratedImage, GenerationRequest, Generator

Status = GenerationRequest.Status
FINISHED = (Status.DONE, Status.FAILED)
NO_JS_WAIT = 3.0  # the result page waits this long for the image before asking for a refresh
GALLERY_PAGE = 36


def wants_json(request) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def base_url(request) -> str:
    return request.build_absolute_uri("/").rstrip("/")


# --- Generate ----------------------------------------------------------------------------------


@require_POST
async def generate(request):
    """Record a request; a form post is sent on to its result page.

    JSON clients may add ``?wait=<s>`` (as the status long poll takes): the answer then comes
    once the images are made, or after ``wait`` seconds with the request still queued or
    running (202, follow ``status_url``). The page's Generate button does this, so a new image
    costs one request and one round trip, not two. Over the long-poll caps it answers at once.
    """
    wait = polls.wait_seconds(request.GET.get("wait")) if wants_json(request) else 0
    # Taken before the task is sent: the wait then knows whether the worker's notice came
    # without reading the row first.
    mark = notify.mark() if wait else None
    req = await sync_to_async(submit_form)(request, release=bool(wait))
    if isinstance(req, HttpResponse):
        return req
    if not wants_json(request):
        return redirect(reverse("gan:request", args=[req.public_id]), permanent=False)
    if wait and req.status not in FINISHED:
        with polls.hold(ratelimit.client_key(request)) as granted:
            if granted:
                req = await wait_until_finished(req.pk, wait, mark) or req
    return await sync_to_async(submitted)(req)


def submit_form(request, release=False):
    """The request a valid form asks for, or the response that says why there is none.

    ``release``: the caller waits for a queued request next, so the connection goes back now.
    """
    form = GenerateForm(request.POST, user=request.user)
    if not form.is_valid():
        return invalid(request, form)
    data = form.cleaned_data
    try:
        req = generation.submit(
            data["generator"],
            kind=data["kind"],
            seeds=data["seeds"],
            steps=data["steps"],
            traits=data["traits"],
            client_key=ratelimit.client_key(request),
        )
    except ratelimit.RateLimited as exc:
        return rate_limited(request, exc)
    if release and req.status not in FINISHED:
        generation.release_connection()
    return req


def submitted(req):
    status = 200 if req.status in FINISHED else 202
    response = JsonResponse(payload(req), status=status)
    response["Location"] = reverse("gan:request_status", args=[req.public_id])
    return response


def invalid(request, form):
    if wants_json(request):
        return JsonResponse({"error": form.first_error(), "errors": form.error_dict()}, status=400)
    return render(request, "gan/invalid.html", {"form": form, "max_seed": MAX_SEED}, status=400)


def rate_limited(request, exc, did="generated a lot"):
    message = (
        f"You have {did} in a short time (the limit is {exc.rate.describe()}). "
        f"Please try again in {exc.retry_after} second{'s' if exc.retry_after != 1 else ''}."
    )
    if wants_json(request):
        response = JsonResponse(
            {"error": message, "retry_after": exc.retry_after, "limit": exc.rate.describe()},
            status=429,
        )
    else:
        response = render(
            request,
            "gan/rate_limited.html",
            {"message": message, "retry_after": exc.retry_after},
            status=429,
        )
    response["Retry-After"] = str(exc.retry_after)
    return response


def payload(req: GenerationRequest) -> dict:
    """The JSON a page polls: status, and links to the images once done."""
    generator = req.generator
    data = {
        "id": str(req.public_id),
        "kind": req.kind,
        "status": req.status,
        "generator": generator.slug,
        "generator_name": generator.name,
        "seeds": req.seeds,
        "traits": conditions.describe(req.params.get("traits") or {}),
        "status_url": reverse("gan:request_status", args=[req.public_id]),
        "page_url": reverse("gan:request", args=[req.public_id]),
    }
    if req.finished_at:
        data["elapsed_ms"] = round((req.finished_at - req.created_at).total_seconds() * 1000)
    if req.status == Status.FAILED:
        data["error"] = public_error(req)
    if req.status != Status.DONE:
        return data
    if req.kind == GenerationRequest.Kind.WALK:
        walk = Walk(
            req.seeds[0],
            req.seeds[1],
            req.params.get("steps", generation.WALK_STEPS),
            generation.condition_key(req),
        )
        data["steps"] = walk.steps
        data["strip_url"] = generation.walk_path(generator, walk)
        return data
    data["images"] = [
        image_links(generator.slug, seed, image, req.params.get("traits"), generator)
        for seed, image in generation.request_images(req)
    ]
    if len(req.seeds) > 1:
        data["zip_url"] = reverse("gan:request_zip", args=[req.public_id])
    return data


def image_links(slug, seed, image, traits=None, generator=None):
    if image is None:
        return {"seed": seed, "removed": True}
    if showcase.withheld(image):
        return {"seed": seed, "removed": True, "reason": showcase.withheld_reason(image)}
    key = image.condition_key
    links = {
        "seed": seed,
        "png": generation.with_traits(reverse("gan:image_png", args=[slug, seed]), key),
        "json": generation.with_traits(reverse("gan:image_json", args=[slug, seed]), key),
        "page": generation.with_traits(reverse("gan:image", args=[slug, seed]), key),
        "name": image.metadata.get("name", f"{slug} #{seed}"),
    }
    if generator is not None:
        links["large"] = upscale.large_download(links["png"], generator.resolution)
    if traits:
        links["trait_check"] = trait_check(generator, traits, image.traits)
    return links


def trait_check(generator, requested: dict, seen: dict) -> list[dict]:
    """Per requested (type, value): whether the trait classifier finds it in the image
    (``seen`` None when the collection has no classifier yet, so the image is unlabelled)."""
    choices = {c.name: c for c in conditions.trait_choices(generator)}
    rows = []
    for trait_type, values in sorted(requested.items()):
        read = {entry["value"] for entry in (seen or {}).get(trait_type, [])}
        for value in values:
            hit = conditions.is_seen(choices.get(trait_type), value, read)
            rows.append({"trait_type": trait_type, "value": value, "seen": hit if seen else None})
    return rows


def public_error(req):
    if not req.generator.is_published:
        return "This generator has been withdrawn, so it cannot make new images."
    return "The generator could not make this image. Please try again in a moment."


@never_cache
@require_GET
async def request_status(request, public_id):
    """Status JSON. ``?since=<status>[,<status>...]&wait=<s>``: answers as soon as the status
    is none of ``since`` (long poll), or after ``wait`` seconds (at most LONG_POLL_MAX_WAIT)
    with it unchanged. A wait over the client's or the process's cap answers 429 at once."""
    wait = polls.wait_seconds(request.GET.get("wait"))
    with polls.hold(ratelimit.client_key(request)) if wait else nullcontext(True) as granted:
        if not granted:
            return too_many_waits()
        pk = await sync_to_async(request_pk)(public_id)
        req = pk and await generation.wait_for_change(pk, request.GET.get("since", ""), wait)
    if req is None:
        return JsonResponse({"error": "No such request."}, status=404)
    return await sync_to_async(status_response)(req)


def status_response(req):
    generation.requeue_if_stuck(req)
    return JsonResponse(payload(req))


def too_many_waits():
    retry = polls.RETRY_AFTER
    response = JsonResponse(
        {
            "error": f"Too many status requests are waiting; try again in {retry} seconds.",
            "retry_after": retry,
        },
        status=429,
    )
    response["Retry-After"] = str(retry)
    return response


def request_pk(public_id):
    """The pk behind a public id (the long poll waits by pk), or None."""
    return generation.unique_row(
        GenerationRequest.objects.filter(public_id=public_id).values_list("pk", flat=True)
    )


async def wait_until_finished(pk, timeout, mark=None):
    return await generation.wait_for_change(pk, f"{Status.QUEUED},{Status.RUNNING}", timeout, mark)


@never_cache
@require_GET
async def request_page(request, public_id):
    """The result page (what the form leads to without JavaScript); refreshes until done.
    Over the long-poll caps it shows the current state at once."""
    pk = await sync_to_async(request_pk)(public_id)
    with polls.hold(ratelimit.client_key(request)) as granted:
        req = pk and await wait_until_finished(pk, NO_JS_WAIT if granted else 0)
    if req is None:
        raise Http404("No such request.")
    return await sync_to_async(result_page)(request, req)


def result_page(request, req):
    return render(
        request,
        "gan/request.html",
        {
            "req": req,
            "data": payload(req),
            "generator": req.generator,
            "collection": req.generator.collection,
            "finished": req.status in FINISHED,
            "published_generators": (
                [req.generator] if req.generator.visible_to(request.user) else []
            ),
            "panel_seed": "",
        },
    )


@require_GET
def request_zip(request, public_id):
    """A batch as a ZIP: ``<generator>-<seed>.png`` + ERC-721 ``.json`` per image."""
    req = get_object_or_404(
        GenerationRequest.objects.select_related("generator"), public_id=public_id
    )
    if req.status != Status.DONE or req.kind == GenerationRequest.Kind.WALK:
        raise Http404("This request has no images to download yet.")
    images = [
        image
        for _, image in generation.request_images(req)
        if image is not None and not showcase.withheld(image)
    ]
    if not images:
        raise Http404("Every image of this request has been removed.")
    items = []
    for image in images:
        with image.image.open("rb") as fh:
            items.append((image, fh.read()))
    response = HttpResponse(batch_zip(items, base_url(request)), content_type="application/zip")
    response["Content-Disposition"] = (
        f'attachment; filename="{req.generator.slug}-batch-{req.public_id}.zip"'
    )
    return response


# --- Permalinks --------------------------------------------------------------------------------


class Gone(Exception):
    pass


class Withheld(Exception):
    """A near-copy of a training image while ``REFUSE_NEAR_COPIES`` is on, or an image the
    labelling read an excluded trait in; the message says which (``showcase.withheld_reason``)."""


def visible_image(slug, seed, key="", user=None) -> GeneratedImage:
    """The stored image for (generator, seed, condition key); 404 if never made, withdrawn or
    unlisted (staff ``user``: a preview), Gone if hidden."""
    generator = generation.served_generator(slug=slug)
    image = None
    if generator is not None and generator.is_published and generator.collection.is_public:
        image = generation.unique_row(
            GeneratedImage.objects.filter(generator=generator, seed=seed, condition_key=key)
        )
    if image is None or not generator.visible_to(user):
        raise Http404("No image has been generated for this seed yet.")
    image.generator = generator
    if image.is_hidden:
        raise Gone
    reason = showcase.withheld_reason(image)
    if reason:
        raise Withheld(reason)
    return image


def withheld(request, reason, as_page=False):
    # 451: the image exists but is kept back (it copies a real token, or shows an excluded trait).
    if as_page:
        return render(request, "gan/withheld.html", {"message": reason}, status=451)
    return HttpResponse(f"{reason}\n", status=451, content_type="text/plain")


def gone(request, as_page=False):
    if as_page:
        return render(request, "gan/gone.html", status=410)
    return HttpResponse(
        "This image was removed by a moderator.\n", status=410, content_type="text/plain"
    )


@require_GET
def image_png(request, slug, seed):
    """``/g/<generator>/<seed>.png[?traits=<key>][&scale=N]``: the stored PNG (never
    re-rendered), or with ``scale`` its nearest-neighbour upscale for full-size use."""
    try:
        image = visible_image(slug, seed, request.GET.get("traits", ""), request.user)
    except Gone:
        return gone(request)
    except Withheld as exc:
        return withheld(request, str(exc))
    try:
        scale = upscale.parse_scale(request.GET.get("scale"), image.generator.resolution)
    except upscale.ScaleError as exc:
        return HttpResponseBadRequest(str(exc), content_type="text/plain; charset=utf-8")
    etag = f'"{image.image_sha256}{f"@{scale}x" if scale > 1 else ""}"'
    if image.image_sha256 and request.headers.get("If-None-Match") == etag:
        return HttpResponseNotModified()
    stem = file_stem(slug, seed) + (f"@{scale}x" if scale > 1 else "")
    # A token's PNG is a few KB (an upscale at most a few hundred): sent as one body, not a
    # file stream, which under ASGI would be read in another thread hand-off.
    with image.image.open("rb") as native:
        body = native.read()
    response = HttpResponse(
        upscale.upscale_png(body, scale) if scale > 1 else body, content_type="image/png"
    )
    response["Content-Disposition"] = content_disposition_header(
        bool(request.GET.get("download")), f"{stem}.png"
    )
    # Short: a moderator's hide must take effect for everyone soon.
    response["Cache-Control"] = "public, max-age=300"
    if image.image_sha256:
        response["ETag"] = etag
    return response


@require_GET
def image_json(request, slug, seed):
    """``/g/<generator>/<seed>.json[?traits=<key>]``: its ERC-721 metadata, absolute links."""
    try:
        image = visible_image(slug, seed, request.GET.get("traits", ""), request.user)
    except Gone:
        return gone(request)
    except Withheld as exc:
        return withheld(request, str(exc))
    response = HttpResponse(
        dumps(absolute(image.metadata, base_url(request))), content_type="application/json"
    )
    if request.GET.get("download"):
        response["Content-Disposition"] = f'attachment; filename="{file_stem(slug, seed)}.json"'
    response["Cache-Control"] = "public, max-age=300"
    return response


@require_GET
def image_page(request, slug, seed):
    """``/g/<generator>/<seed>/``: the image with its metadata, or an offer to generate it."""
    generator = showcase.generator_for_page(slug)
    if generator is None or not generator.collection.is_public:
        raise Http404("No such generator.")
    if not generator.visible_to(request.user):  # unlisted: staff preview only
        raise Http404("No such generator.")
    if seed > MAX_SEED:
        raise Http404("Seeds go up to 2^53 - 1.")
    key = request.GET.get("traits", "")
    try:
        image = visible_image(slug, seed, key, request.user)
    except Gone:
        return gone(request, as_page=True)
    except Withheld as exc:
        return withheld(request, str(exc), as_page=True)
    except Http404:
        image = None
    metadata = None
    if image is not None:
        image.count_view()
        metadata = absolute(image.metadata, base_url(request))
    return render(
        request,
        "gan/image.html",
        {
            "generator": generator,
            "collection": generator.collection,
            "seed": seed,
            "image": image,
            "metadata": metadata,
            "metadata_json": dumps(metadata) if metadata else "",
            "published_generators": [generator],
            "panel_seed": seed,
            "condition_key": key,
            "reported": bool(request.GET.get("reported")),
            "report_url": reverse("gan:report_image", args=[slug, seed]),
            "png_url": generation.with_traits(reverse("gan:image_png", args=[slug, seed]), key),
            "json_url": generation.with_traits(reverse("gan:image_json", args=[slug, seed]), key),
            "trait_choices": conditions.choices_for_key(generator, key),
            "trait_check": trait_check(
                generator, image.metadata.get("requested_traits") or {}, image.traits
            )
            if image is not None and key
            else [],
        },
    )


@require_POST
def report_image(request, slug, seed):
    """``POST /g/<generator>/<seed>/report/``: queue a public image for moderation."""
    key = request.POST.get("traits", "")
    try:
        image = visible_image(slug, seed, key, request.user)
    except (Gone, Withheld):
        raise Http404("This image is not shown, so there is nothing to report.") from None
    try:
        moderation.report_image(
            image, request.POST.get("reason", ""), ratelimit.client_key(request)
        )
    except ratelimit.RateLimited as exc:
        return rate_limited(request, exc, did="reported several images")
    message = "Thank you: a moderator will look at this image."
    if wants_json(request):
        return JsonResponse({"reported": True, "message": message}, status=202)
    page = image.get_absolute_url()
    return redirect(f"{page}{'&' if '?' in page else '?'}reported=1")


@require_GET
def walk_png(request, slug, start, end, steps):
    """``/g/<generator>/walk/<a>-<b>-<steps>.png``: a stored latent-walk strip."""
    generator = showcase.public_generators().filter(slug=slug).first()
    if generator is None:
        raise Http404("No such generator.")
    walk = Walk(start, end, steps, request.GET.get("traits", ""))
    name = generation.walk_name(generator, walk)
    if not default_storage.exists(name):
        raise Http404("This walk has not been drawn yet.")
    response = FileResponse(default_storage.open(name, "rb"), content_type="image/png")
    response["Cache-Control"] = "public, max-age=300"
    return response


# --- Pages -------------------------------------------------------------------------------------


@require_GET
def generator_page(request, slug):
    generator = showcase.generator_for_page(slug)
    visible = generator is not None and generator.collection.is_public
    # Staff see unpublished and unlisted generators (a preview); visitors listed ones only.
    if not visible or not (generator.is_public or request.user.is_staff):
        raise Http404("No such generator.")
    run = generator.training_run
    walk_req = (
        GenerationRequest.objects.filter(
            generator=generator, kind=GenerationRequest.Kind.WALK, status=Status.DONE
        )
        .order_by("-finished_at")
        .first()
    )
    return render(
        request,
        "gan/generator.html",
        {
            "generator": generator,
            "collection": generator.collection,
            "trained_on": showcase.trained_on(generator),
            "facts": showcase.training_facts(generator),
            "metrics": showcase.metric_rows(generator.metrics),
            "loss_figure": showcase.loss_figure(run),
            "walk": payload(walk_req) if walk_req else None,
            "recent": list(showcase.public_images().filter(generator=generator)[:12]),
            "published_generators": [generator] if generator.visible_to(request.user) else [],
            "siblings": [g for g in generator.collection.generators.all() if g.pk != generator.pk],
            "panel_seed": "",
            "trait_choices": conditions.trait_choices(generator),
        },
    )


@require_GET
def gallery(request):
    """Public images, newest first, narrowed by ?collection= and/or ?generator= (slugs)."""
    generators = list(
        Generator.served(showcase.public_generators()).order_by("collection__name", "-version")
    )
    collections = list({g.collection.slug: g.collection for g in generators}.values())
    current_collection = _pick(collections, request.GET.get("collection"), "collection")
    if current_collection:
        generators = [g for g in generators if g.collection_id == current_collection.pk]
    current = _pick(generators, request.GET.get("generator"), "generator")
    images = showcase.public_images()
    if current_collection:
        images = images.filter(generator__collection=current_collection)
    if current:
        images = images.filter(generator=current)
    page = Paginator(images, GALLERY_PAGE).get_page(request.GET.get("page"))
    return render(
        request,
        "gan/gallery.html",
        {
            "page": page,
            "current": current,
            "current_collection": current_collection,
            "generators": generators,
            "collections": collections,
        },
    )


def _pick(objects, slug, what):
    """The object with ``slug`` (None when no slug is asked for); an unknown slug is a 404."""
    slug = (slug or "").strip()
    if not slug:
        return None
    found = next((o for o in objects if o.slug == slug), None)
    if found is None:
        raise Http404(f"No such {what}.")
    return found


# --- Evaluation --------------------------------------------------------------------------------


@require_GET
def compare_generators(request, slug):
    """A collection's published generators side by side, each figure beside its baseline."""
    from collections_app.models import Collection

    from .evaluation.figures import comparison_rows

    collection = get_object_or_404(Collection, slug=slug, is_public=True)
    generators = showcase.public_generators().filter(collection=collection).order_by("-version")
    return render(
        request,
        "gan/compare.html",
        {"collection": collection, "rows": comparison_rows(generators)},
    )
