"""Admin page of a training run's evaluation: metric vs epoch, the recommended epoch, one click
to publish an epoch (the run admin's one publish view) and a button to evaluate every checkpoint
(``/admin/gan_app/trainingrun/<id>/evaluation/``, staff only; routed by the run admin's
``get_urls``, linked from the run's page)."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html
from django.views.decorators.http import require_http_methods

from nftsite.jobs import dispatch_now

from ..models import TrainingRun
from . import figures
from . import reports as evaluation


def evaluation_url(run):
    return reverse("admin:gan_app_trainingrun_evaluation", args=[run.pk])


def evaluation_link(run):
    """A link for the run's change page (see the hook at the end of ``gan_app/admin.py``)."""
    if run is None or not run.pk:
        return "—"
    return format_html(
        '<a href="{}">Evaluation: metrics per epoch, publish an epoch</a>', evaluation_url(run)
    )


def metric_figure(series):
    """Plotly figure: domain FID per epoch with its real-vs-real baseline; trait TV on the
    right axis (drawn by static/js/charts.js: the CSP forbids inline scripts)."""
    if not series:
        return None
    epochs = [row["epoch"] for row in series]
    traces = [
        ("domain_fid", "Domain FID", "#6a4cff", "solid", "y"),
        ("domain_fid_baseline", "Domain FID, real vs real", "#6a4cff", "dot", "y"),
        ("trait_tv", "Trait distribution gap (TV)", "#e0569f", "solid", "y2"),
        ("trait_tv_baseline", "Trait gap, real vs real", "#e0569f", "dot", "y2"),
    ]
    data = [
        {
            "type": "scatter",
            "mode": "lines+markers",
            "name": name,
            "x": epochs,
            "y": [row[key] for row in series],
            "yaxis": axis,
            "line": {"color": colour, "dash": dash, "width": 2},
            "hovertemplate": f"epoch %{{x}}<br>{name} %{{y:.4g}}<extra></extra>",
        }
        for key, name, colour, dash, axis in traces
    ]
    layout = {
        "margin": {"l": 56, "r": 56, "t": 8, "b": 40},
        "height": 320,
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "xaxis": {"title": {"text": "Epoch"}},
        "yaxis": {"title": {"text": "Domain FID (lower is better)"}, "rangemode": "tozero"},
        "yaxis2": {
            "title": {"text": "Trait TV"},
            "overlaying": "y",
            "side": "right",
            "rangemode": "tozero",
        },
        "legend": {"orientation": "h", "y": 1.18},
    }
    return {"data": data, "layout": layout}


def _run(request, pk):
    if not request.user.has_perm("gan_app.view_trainingrun"):
        raise PermissionDenied
    return get_object_or_404(TrainingRun.objects.select_related("training_set__collection"), pk=pk)


def run_evaluation(request, pk):
    run = _run(request, pk)
    series = figures.metric_series(run)
    checkpoints = list(run.checkpoints.order_by("epoch"))
    recommended = figures.recommended_checkpoint(run)
    published = {g.checkpoint_id: g for g in run.generators.all()}
    rows = [
        {
            "checkpoint": c,
            "metrics": next((s for s in series if s["checkpoint"] == c.pk), None),
            "generator": published.get(c.pk),
            "recommended": bool(recommended and recommended["checkpoint"] == c.pk),
        }
        for c in checkpoints
    ]
    context = {
        **admin.site.each_context(request),
        "title": f"Evaluation of {run}",
        "run": run,
        "opts": TrainingRun._meta,
        "rows": rows,
        "recommended": recommended,
        "figure": metric_figure(series),
        "classifier": evaluation.classifier_summary(run.collection),
        "can_publish": request.user.has_perm("gan_app.add_generator"),
        "can_evaluate": request.user.has_perm("gan_app.change_trainingrun"),
        "unevaluated": sum(1 for row in rows if row["metrics"] is None),
    }
    return TemplateResponse(request, "admin/gan_app/trainingrun/evaluation.html", context)


@require_http_methods(["POST"])
def evaluate_all(request, pk):
    run = _run(request, pk)
    if not request.user.has_perm("gan_app.change_trainingrun"):
        raise PermissionDenied
    force = bool(request.POST.get("force"))
    dispatch_now("gan_app.tasks.evaluate_run", [run.pk], {"force": force})
    messages.success(
        request,
        f"Evaluating the {run.checkpoints.count()} checkpoint(s) of this run on the train "
        "queue; reload this page to see the figures arrive.",
    )
    return redirect(evaluation_url(run))
