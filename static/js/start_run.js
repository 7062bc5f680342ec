/* The start-run form: picking another training set fills in that set's suggested batch size
   and augmentation (the server's, from the JSON the page carries), unless the admin changed a
   field by hand, that is, it no longer holds the value last suggested for it. */
(function () {
  "use strict";

  document.addEventListener("DOMContentLoaded", function () {
    var data = document.getElementById("training-set-defaults");
    var chosen = document.getElementById("id_training_set");
    var batch = document.getElementById("id_batch_size");
    var augment = document.getElementById("id_augment");
    if (!data || !chosen || !batch || !augment) return;
    var defaults = JSON.parse(data.textContent);
    var help = batch.closest(".form-row").querySelector(".help");
    // What the fields hold as suggestions now: the loaded set's, else what the page came with.
    var first = defaults[chosen.value];
    var suggested = {
      batch: first ? String(first.batch_size) : batch.value,
      augment: first ? first.augment : augment.checked
    };

    chosen.addEventListener("change", function () {
      var next = defaults[chosen.value];
      if (!next) return;
      if (batch.value === suggested.batch) batch.value = String(next.batch_size);
      if (augment.checked === suggested.augment) augment.checked = next.augment;
      suggested = { batch: String(next.batch_size), augment: next.augment };
      if (help) help.textContent = next.help;
    });
  });
})();
