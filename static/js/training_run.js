/* The training run page (admin): polls the run's JSON status while it trains and refreshes the
   progress figures, the latest sample grid and the loss chart. No inline scripts (CSP). */
(function () {
  "use strict";

  var POLL_MS = 3000;

  function drawChart(el, figure) {
    if (!figure || !window.Plotly) return;
    el.textContent = "";
    window.Plotly.react(el, figure.data, figure.layout || {}, { responsive: true, displaylogo: false });
  }

  function setText(root, name, value) {
    var el = root.querySelector('[data-field="' + name + '"]');
    if (el) el.textContent = value;
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
    var grid = root.querySelector('img[data-field="grid_url"]');
    if (grid && s.grid_url && grid.getAttribute("src") !== s.grid_url) {
      grid.src = s.grid_url;
      grid.hidden = false;
    }
    if (chart) drawChart(chart, s.figure);
  }

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
          // New checkpoints or another status change the buttons and the timeline: reload.
          if (s.status !== root.dataset.status || String(s.checkpoints) !== root.dataset.checkpoints) {
            window.location.reload();
            return;
          }
          update(root, chart, s);
          if (s.is_active) setTimeout(poll, POLL_MS);
        })
        .catch(function () { setTimeout(poll, POLL_MS * 3); });
    }
    if (root.dataset.status === "queued" || root.dataset.status === "running") setTimeout(poll, POLL_MS);
  });
})();
