/* The training run page (admin): polls the run's JSON status while it trains and patches the
   page in place: the progress figures, the latest sample grid and the loss chart every few
   seconds; the controls, the control note and the checkpoint timeline (fetched from this page's
   own HTML) when the status, the checkpoints or the staleness change. It never reloads the page,
   so a click is never lost and edits in the form below survive. Forms marked data-confirm ask
   first. No inline scripts (CSP). */
(function () {
  "use strict";

  var POLL_MS = 3000;

  function drawChart(el, figure) {
    if (!figure || !window.Plotly) return;
    if (!el.classList.contains("js-plotly-plot")) el.textContent = "";
    window.Plotly.react(el, figure.data, figure.layout || {}, { responsive: true, displaylogo: false });
  }

  function setText(root, name, value) {
    var el = root.querySelector('[data-field="' + name + '"]');
    if (el) el.textContent = value;
  }

  function showGrid(root, url) {
    var grid = root.querySelector('img[data-field="grid_url"]');
    if (!grid || !url || grid.getAttribute("src") === url) return;
    grid.src = url;
    grid.hidden = false;
    var placeholder = root.querySelector('[data-field="grid_placeholder"]');
    if (placeholder) placeholder.hidden = true;
  }

  function update(root, chart, s) {
    setText(root, "status_label", s.status_label);
    setText(root, "percent_text", s.percent);
    setText(root, "epoch_done", s.epoch_done);
    setText(root, "images_per_second", s.images_per_second ? Math.round(s.images_per_second) : "—");
    setText(root, "eta", s.eta || "—");
    var bar = root.querySelector('progress[data-field="percent"]');
    if (bar) bar.value = s.percent;
    var error = root.querySelector('[data-field="error"]');
    if (error) { error.textContent = s.error; error.hidden = !s.error; }
    showGrid(root, s.grid_url);
    if (chart) drawChart(chart, s.figure);
  }

  function changed(root, s) {
    return s.status !== root.dataset.status ||
      String(s.checkpoints) !== root.dataset.checkpoints ||
      String(!!s.stale) !== root.dataset.stale;
  }

  /* Swap each [data-region] for its fresh copy from this page's HTML (buttons and timeline
     depend on the status; rendering them twice, here and in the template, would drift). */
  function refreshRegions(root) {
    return fetch(window.location.href, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (!html) return;
        var fresh = new DOMParser().parseFromString(html, "text/html").querySelector("[data-run-status-url]");
        if (!fresh) return;
        root.querySelectorAll("[data-region]").forEach(function (el) {
          var other = fresh.querySelector('[data-region="' + el.dataset.region + '"]');
          if (other) el.replaceWith(document.adoptNode(other));
        });
        root.dataset.status = fresh.dataset.status;
        root.dataset.checkpoints = fresh.dataset.checkpoints;
        root.dataset.stale = fresh.dataset.stale;
      });
  }

  function isActive(status) { return status === "queued" || status === "running"; }

  document.addEventListener("submit", function (event) {
    var message = event.target.dataset && event.target.dataset.confirm;
    if (message && !window.confirm(message)) event.preventDefault();
  });

  document.addEventListener("DOMContentLoaded", function () {
    var root = document.querySelector("[data-run-status-url]");
    if (!root) return;
    var chart = root.querySelector("[data-live-chart]");
    var initial = chart && document.getElementById(chart.dataset.liveChart);
    if (initial) drawChart(chart, JSON.parse(initial.textContent));

    function poll() {
      fetch(root.dataset.runStatusUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (s) {
          if (!s) return setTimeout(poll, POLL_MS * 3);
          update(root, chart, s);
          var next = function () { if (isActive(s.status)) setTimeout(poll, POLL_MS); };
          if (changed(root, s)) return refreshRegions(root).then(next, next);
          next();
        })
        .catch(function () { setTimeout(poll, POLL_MS * 3); });
    }
    if (isActive(root.dataset.status)) setTimeout(poll, POLL_MS);
  });
})();
