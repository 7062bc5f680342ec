/* The collection page's filter sidebar: ticking a trait applies it at once (without JavaScript
   the Apply button does), and the "Find a trait" box narrows the checkbox lists as you type
   (also the admin's trait picker when building a training set). */
(function () {
  "use strict";

  function autoSubmit(form) {
    form.addEventListener("change", function (event) {
      if (event.target.matches("input[type=checkbox], select")) form.requestSubmit ? form.requestSubmit() : form.submit();
    });
  }

  function findList(input) {
    var holder = document.getElementById(input.dataset.filterList);
    if (!holder) return;
    input.addEventListener("input", function () {
      var needle = input.value.trim().toLowerCase();
      holder.querySelectorAll(".trait-group").forEach(function (group) {
        var shown = 0;
        group.querySelectorAll("li").forEach(function (item) {
          // The value's own text when it is marked: counts and checkbox labels do not match.
          var text = (item.querySelector(".trait-value") || item).textContent.toLowerCase();
          var match = needle === "" || text.indexOf(needle) !== -1;
          item.hidden = !match;
          if (match) shown += 1;
        });
        var typeName = group.querySelector("summary").firstChild.textContent.toLowerCase();
        var typeMatch = needle !== "" && typeName.indexOf(needle) !== -1;
        if (typeMatch) {
          group.querySelectorAll("li").forEach(function (item) {
            item.hidden = false;
          });
        }
        group.hidden = shown === 0 && !typeMatch;
        if (needle !== "") group.open = true;
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("form[data-filter-form]").forEach(autoSubmit);
    document.querySelectorAll("[data-filter-list]").forEach(findList);
  });
})();
