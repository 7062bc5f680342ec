/* The collection page's filter sidebar: ticking a trait applies it at once (without JavaScript
   the Apply button does), and the "Find a trait" box narrows the checkbox lists as you type. */
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
          var match = needle === "" || item.textContent.toLowerCase().indexOf(needle) !== -1;
          item.hidden = !match;
          if (match) shown += 1;
        });
        var typeMatch = needle !== "" && group.querySelector("summary").textContent.toLowerCase().indexOf(needle) !== -1;
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
