/* The start-run form: picking another training set fills in that set's suggested batch size,
   augmentation and trait conditioning (the server's, from the JSON the page carries), unless
   the admin changed a field by hand: typed or ticked here, or, on a form sent back with
   errors, holding another value than the one suggested for the set it was sent with. */
(function () {
  "use strict";

  document.addEventListener("DOMContentLoaded", function () {
    var data = document.getElementById("training-set-defaults");
    var chosen = document.getElementById("id_training_set");
    var batch = document.getElementById("id_batch_size");
    var augment = document.getElementById("id_augment");
    var conditional = document.getElementById("id_conditional");
    if (!data || !chosen || !batch || !augment || !conditional) return;
    var defaults = JSON.parse(data.textContent);
    var help = batch.closest(".form-row").querySelector(".help");
    var start = defaults.sets[chosen.value] || defaults.initial;
    var edited = {
      batch: batch.value !== String(start.batch_size),
      augment: augment.checked !== start.augment,
      conditional: conditional.checked !== start.conditional
    };
    // Only the admin's own input fires these; the values set below do not.
    batch.addEventListener("input", function () { edited.batch = true; });
    augment.addEventListener("change", function () { edited.augment = true; });
    conditional.addEventListener("change", function () { edited.conditional = true; });

    chosen.addEventListener("change", function () {
      var next = defaults.sets[chosen.value];
      if (!next) return;
      if (!edited.batch) batch.value = String(next.batch_size);
      if (!edited.augment) augment.checked = next.augment;
      if (!edited.conditional) conditional.checked = next.conditional;
      if (help) help.textContent = next.help;
    });
  });
})();
