/* The build-training-set form: the trait picker follows the chosen collection, and the preview
   (count, funnel, thumbnails) follows the filters as they change. The server renders both; this
   only asks for them. Without JavaScript the Preview button posts the form for the same view. */
(function () {
  "use strict";

  var WAIT_MS = 300; // typing a percentage asks once, after a pause

  function fetchJson(url, options) {
    return fetch(url, Object.assign({ credentials: "same-origin" }, options)).then(function (r) {
      if (!r.ok) throw new Error("the server answered " + r.status);
      return r.json();
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var panel = document.getElementById("build-preview");
    var picker = document.getElementById("trait-picker");
    if (!panel || !picker) return;
    var form = panel.closest("form");
    var finder = document.querySelector("[data-filter-list=trait-picker]");
    var asked = 0; // only the newest answer is shown
    var timer = null;

    function showPreview() {
      var mine = ++asked;
      var data = new FormData(form);
      if (!data.get("collection")) return;
      panel.setAttribute("aria-busy", "true");
      fetchJson(panel.dataset.previewUrl, { method: "POST", body: data })
        .then(function (answer) {
          if (mine === asked) panel.innerHTML = answer.html;
        })
        .catch(function (error) {
          if (mine === asked) panel.textContent = "No preview: " + error.message + ". Press Preview to try again.";
        })
        .finally(function () {
          if (mine === asked) panel.removeAttribute("aria-busy");
        });
    }

    function previewSoon() {
      clearTimeout(timer);
      timer = setTimeout(showPreview, WAIT_MS);
    }

    function showTraits() {
      var pk = form.elements.collection.value;
      fetchJson(picker.dataset.traitsUrl + "?collection=" + encodeURIComponent(pk))
        .then(function (answer) {
          picker.innerHTML = answer.html;
          if (finder && finder.value) finder.dispatchEvent(new Event("input"));
          if (pk) showPreview();
          else panel.textContent = "Choose a collection to see what its filters select.";
        })
        .catch(function (error) {
          picker.textContent = "The traits could not be listed: " + error.message + ".";
        });
    }

    form.addEventListener("change", function (event) {
      var name = event.target.name;
      if (!name || name === "name") return;
      if (name === "collection") showTraits();
      else previewSoon();
    });
    form.addEventListener("input", function (event) {
      if (event.target.name && event.target.matches("input[type=number]")) previewSoon();
    });
    if (!panel.hasAttribute("data-shown")) showPreview();
  });
})();
