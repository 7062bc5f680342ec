/* Draws the plotly figures embedded in the page (json_script) and filters searchable tables.
   plotly.js comes from our own static files (vendor/plotly-cartesian.min.js), never a CDN. */
(function () {
  "use strict";

  function cssVar(name, fallback) {
    var value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return value || fallback;
  }

  // Figures are stored theme-neutral; colour text and grid lines from the page's palette so
  // light and dark mode both read well.
  function themed(layout) {
    var ink = cssVar("--ink", "#1d1b2f");
    var line = cssVar("--line", "#e3e0ef");
    layout.font = Object.assign({}, layout.font, { color: ink });
    Object.keys(layout).forEach(function (key) {
      if (/^[xy]axis\d*$/.test(key)) {
        layout[key] = Object.assign({ gridcolor: line, linecolor: line, zerolinecolor: line }, layout[key]);
      }
    });
    return layout;
  }

  function draw(el) {
    var source = document.getElementById(el.dataset.figure);
    if (!source) return;
    var figure = JSON.parse(source.textContent);
    var config = {
      responsive: true,
      displaylogo: false,
      modeBarButtonsToRemove: ["lasso2d", "select2d", "autoScale2d"],
    };
    window.Plotly.newPlot(el, figure.data, themed(figure.layout || {}), config).then(function () {
      el.classList.add("is-drawn");
    });
    var url = el.dataset.tokenUrl;
    if (url) {
      el.on("plotly_click", function (event) {
        var point = event.points && event.points[0];
        if (point && point.customdata) {
          window.location.href = url.replace("__id__", encodeURIComponent(point.customdata[0]));
        }
      });
    }
  }

  function filterTable(input) {
    var table = document.getElementById(input.dataset.filterTable);
    if (!table) return;
    input.addEventListener("input", function () {
      var needle = input.value.trim().toLowerCase();
      table.querySelectorAll("tbody tr").forEach(function (row) {
        row.hidden = needle !== "" && row.textContent.toLowerCase().indexOf(needle) === -1;
      });
    });
  }

  function failed(charts) {
    charts.forEach(function (el) {
      el.textContent = "The chart library did not load.";
      el.classList.add("chart-failed");
    });
  }

  // Calls back once plotly.js is there: now, or when its async script has run.
  function whenPlotly(charts, callback) {
    if (window.Plotly) return callback();
    var script = document.getElementById("plotly-js");
    if (!script) return failed(charts);
    script.addEventListener("load", function () {
      if (window.Plotly) callback();
      else failed(charts);
    });
    script.addEventListener("error", function () {
      failed(charts);
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var charts = document.querySelectorAll("[data-figure]");
    if (charts.length) {
      whenPlotly(charts, function () {
        charts.forEach(draw);
      });
    }
    document.querySelectorAll("[data-filter-table]").forEach(filterTable);
  });
})();
