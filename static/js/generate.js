/* The Generate button without a page load: POST the form as JSON, long-poll the request's
   status (the server answers as soon as it changes), then show the image and its downloads.
   Without JavaScript the same forms post normally and land on a result page. */
(function () {
  "use strict";

  var POLL_WAIT = 20; // seconds the server may hold a status request open

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      if (key === "text") node.textContent = attrs[key];
      else node.setAttribute(key, attrs[key]);
    });
    (children || []).forEach(function (child) {
      if (child) node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    });
    return node;
  }

  function setState(box, state, nodes) {
    box.dataset.state = state;
    box.setAttribute("aria-busy", state === "queued" || state === "running" ? "true" : "false");
    box.replaceChildren.apply(box, nodes);
  }

  function statusLine(text, busy) {
    return el("p", { class: "gen-status", role: "status" }, [
      busy ? el("span", { class: "spinner", "aria-hidden": "true" }) : null,
      " " + text,
    ]);
  }

  function button(href, label, kind, download) {
    var attrs = { class: "btn " + kind, href: href };
    if (download) attrs.download = "";
    return el("a", attrs, [label]);
  }

  function loaded(img) {
    return new Promise(function (resolve) {
      if (img.complete && img.naturalWidth) return resolve();
      img.addEventListener("load", resolve, { once: true });
      img.addEventListener("error", resolve, { once: true });
    });
  }

  function elapsed(prefix) {
    return el("span", { class: "muted", "data-elapsed": prefix }, []);
  }

  function renderSingle(data) {
    var image = data.images[0];
    if (image.removed) {
      return [el("p", { class: "notice" }, [image.reason || "Seed " + image.seed + " was removed by a moderator."])];
    }
    var img = el("img", {
      class: "pixel result-image",
      src: image.png,
      alt: image.name + ", a generated image",
      width: "256",
      height: "256",
    });
    return [
      el("figure", { class: "single-result" }, [
        el("a", { href: image.page }, [img]),
        el("figcaption", {}, [
          el("strong", {}, ["Seed ", el("span", { class: "mono" }, [String(image.seed)])]),
          elapsed(" · ready in "),
        ]),
      ]),
      traitCheck(image.trait_check),
      el("p", { class: "result-actions" }, [
        button(withParam(image.png, "download=1"), "Download PNG", "btn-primary", true),
        " ",
        image.large
          ? button(withParam(image.large.url, "download=1"), "Download " + image.large.side + " px", "btn-secondary", true)
          : null,
        " ",
        button(withParam(image.json, "download=1"), "Metadata JSON", "btn-secondary", true),
        " ",
        button(image.page, "Permalink", "btn-ghost", false),
      ]),
      el("p", { class: "result-actions again-actions" }, [
        action("Random again", "random"),
        " ",
        action("Next seed", "next", { "data-seed": String(image.seed) }),
        " ",
        action("Copy link", "copy", { "data-url": new URL(image.page, window.location.href).href }),
        el("span", { class: "copy-status muted small", role: "status" }, []),
      ]),
    ];
  }

  // A button in a result that acts on the form: data-action says what (see onAction).
  function action(label, name, attrs) {
    return el("button", Object.assign({ type: "button", class: "btn btn-ghost", "data-action": name }, attrs || {}), [label]);
  }

  function withParam(url, param) {
    return url + (url.indexOf("?") >= 0 ? "&" : "?") + param;
  }

  // A conditional generator's result: each requested trait and whether the trait classifier
  // (trained on the collection's real images) finds it. Same markup as gan/_trait_check.html.
  function traitCheck(rows) {
    if (!rows || !rows.length) return "";
    var items = rows.map(function (row) {
      var seen = row.seen === null ? "unknown" : row.seen ? "yes" : "no";
      var verdict =
        row.seen === null
          ? el("span", { class: "muted" }, ["not checked (no trait classifier for this collection yet)"])
          : row.seen
            ? el("span", { class: "good" }, ["✓ recognised"])
            : el("span", { class: "bad" }, ["✗ not recognised"]);
      var label = row.trait_type.replace(/_/g, " ");
      label = label.charAt(0).toUpperCase() + label.slice(1);
      return el("li", { "data-seen": seen }, [label + ": ", el("strong", {}, [row.value]), " — ", verdict]);
    });
    return el("div", { class: "trait-check", "data-trait-check": "" }, [
      el("p", { class: "small muted" }, ["Asked for, and what the trait classifier sees in the image:"]),
      el("ul", { class: "small" }, items),
    ]);
  }

  function shortSeed(seed) {
    var text = String(seed);
    return text.length <= 6 ? text : "…" + text.slice(-4);
  }

  function renderBatch(data) {
    var items = data.images.map(function (image) {
      var visual = image.removed
        ? el("span", { class: "removed", title: image.reason || "Removed by a moderator" }, [image.reason ? "withheld" : "removed"])
        : el("a", { href: image.page, title: "Seed " + image.seed }, [
            el("img", { class: "pixel", src: image.png, alt: image.name, width: "96", height: "96" }),
          ]);
      return el("li", {}, [visual, el("span", { class: "mono small" }, [shortSeed(image.seed)])]);
    });
    var seeds = data.seeds;
    return [
      el("p", { class: "batch-caption muted small" }, [
        "Seeds ",
        el("span", { class: "mono" }, [String(seeds[0])]),
        " to ",
        el("span", { class: "mono" }, [String(seeds[seeds.length - 1])]),
        data.traits ? " · " + data.traits : "",
      ]),
      el("ul", { class: "batch-result", "data-count": String(data.images.length) }, items),
      el("p", { class: "result-actions" }, [
        button(data.zip_url, "Download ZIP", "btn-primary", true),
        " ",
        action("Random again", "random"),
        " ",
        el("span", { class: "muted small" }, [
          data.images.length + " PNG files with ERC-721 metadata JSON",
          elapsed(" · ready in "),
        ]),
      ]),
    ];
  }

  function renderWalk(data) {
    var alt = "A latent walk in " + data.steps + " steps from seed " + data.seeds[0] + " to seed " + data.seeds[1];
    return [
      el("figure", { class: "walk-result" }, [
        el("img", { class: "pixel walk-strip", src: data.strip_url, alt: alt }),
        el("figcaption", { class: "muted small" }, [
          "Seed " + data.seeds[0] + " → seed " + data.seeds[1] + ", " + data.steps + " steps",
          elapsed(" · ready in "),
        ]),
      ]),
      el("p", { class: "result-actions" }, [button(data.strip_url, "Download strip", "btn-secondary", true)]),
    ];
  }

  function render(data) {
    if (data.strip_url) return renderWalk(data);
    if (data.images.length === 1) return renderSingle(data);
    return renderBatch(data);
  }

  function getJSON(url) {
    return fetch(url, { headers: { Accept: "application/json" }, cache: "no-store", credentials: "same-origin" });
  }

  function follow(data) {
    if (data.status !== "queued" && data.status !== "running") return Promise.resolve(data);
    // Wait out queued and running in one request: the answer comes when the image is ready.
    var url = data.status_url + "?wait=" + POLL_WAIT + "&since=queued,running";
    return getJSON(url).then(function (response) {
      // Too many waits held at once (several tabs, a shared address): ask again shortly.
      if (response.status === 429) return pause(response.headers.get("Retry-After")).then(function () {
        return follow(data);
      });
      if (!response.ok) throw new Error("status " + response.status);
      return response.json().then(follow);
    });
  }

  function pause(seconds) {
    var ms = Math.min(Math.max(Number(seconds) || 2, 1), 30) * 1000;
    return new Promise(function (resolve) {
      setTimeout(resolve, ms);
    });
  }

  function problem(box, text) {
    setState(box, "failed", [el("p", { class: "notice notice-bad", role: "alert" }, [text])]);
  }

  // --- Inline validation: a message under the field, cleared on the next try. ---

  function clearFieldErrors(form) {
    form.querySelectorAll(".field-error").forEach(function (node) {
      node.remove();
    });
    form.querySelectorAll("[aria-invalid]").forEach(function (input) {
      input.removeAttribute("aria-invalid");
      var ids = (input.getAttribute("aria-describedby") || "").split(" ").filter(function (id) {
        return id && id !== input.id + "-error";
      });
      input.setAttribute("aria-describedby", ids.join(" "));
    });
  }

  // Shows ``text`` under the form's field ``name``; false when the form has no such field.
  function fieldError(form, name, text) {
    var input = form.querySelector("[name='" + name + "']:not([type=hidden])");
    if (!input) return false;
    var id = (input.id || "gen-" + name) + "-error";
    var message = el("p", { class: "field-error", id: id }, [text]);
    (input.closest(".field") || input.parentNode).appendChild(message);
    input.setAttribute("aria-invalid", "true");
    input.setAttribute("aria-describedby", ((input.getAttribute("aria-describedby") || "") + " " + id).trim());
    return true;
  }

  // The seed as the server reads it (spaces, commas and underscores are digit separators).
  function seedProblem(form) {
    var input = form.querySelector("[name=seed]");
    if (!input) return null;
    var raw = input.value.replace(/[\s,_]/g, "");
    if (raw === "") return null;
    if (!/^[0-9]+$/.test(raw)) return "Use digits only, for example 4242 (or leave it empty for a random seed).";
    var max = Number(input.dataset.maxSeed || Number.MAX_SAFE_INTEGER);
    if (Number(raw) > max) return "Seeds go up to " + max.toLocaleString("en") + ".";
    return null;
  }

  function invalid(form, box, errors) {
    var unplaced = [];
    Object.keys(errors).forEach(function (name) {
      if (!fieldError(form, name, errors[name][0])) unplaced.push(errors[name][0]);
    });
    if (unplaced.length) problem(box, unplaced.join(" "));
    else idle(box, "Fix the marked field above, then press Generate again.");
    var first = form.querySelector("[aria-invalid=true]");
    if (first) first.focus();
  }

  // Back to an empty result area: the last image no longer matches the form.
  function idle(box, text) {
    setState(box, "idle", [el("p", { class: "muted small result-hint" }, [text])]);
  }

  function onAction(form, event) {
    var target = event.target.closest("[data-action]");
    if (!target) return;
    var seed = form.querySelector("[name=seed]");
    if (target.dataset.action === "copy") return copyLink(target);
    if (seed && target.dataset.action === "random") seed.value = "";
    if (seed && target.dataset.action === "next") seed.value = String(Number(target.dataset.seed) + 1);
    if (form.requestSubmit) form.requestSubmit();
    else form.dispatchEvent(new Event("submit", { cancelable: true }));
  }

  function copyLink(target) {
    var url = target.dataset.url;
    var status = target.parentNode.querySelector(".copy-status");
    var done = function (text) {
      if (status) status.textContent = text;
    };
    var fallback = function () {
      var field = el("textarea", { class: "visually-hidden", readonly: "" }, [url]);
      document.body.appendChild(field);
      field.select();
      var ok = document.execCommand && document.execCommand("copy");
      field.remove();
      done(ok ? "Link copied." : "Copy this link: " + url);
    };
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(url).then(function () {
        done("Link copied.");
      }, fallback);
    } else {
      fallback();
    }
  }

  function submit(form, event) {
    event.preventDefault();
    var box = document.getElementById(form.dataset.result);
    var submitButton = form.querySelector("[type=submit]");
    if (!box || (submitButton && submitButton.disabled)) return;
    clearFieldErrors(form);
    var seedError = seedProblem(form);
    if (seedError) return invalid(form, box, { seed: [seedError] });
    var started = performance.now();
    if (submitButton) submitButton.disabled = true;
    setState(box, "queued", [statusLine("Generating…", true)]);
    var slow = setTimeout(function () {
      if (box.dataset.state === "queued") {
        setState(box, "queued", [statusLine("Still waiting for a free generator… hang on.", true)]);
      }
    }, 8000);
    // The answer waits for the image (as a status long poll would): one request, one round trip.
    var action = new URL(form.action, window.location.href);
    action.searchParams.set("wait", String(POLL_WAIT));
    fetch(action.toString(), {
      method: "POST",
      body: new FormData(form),
      headers: { Accept: "application/json" },
      credentials: "same-origin",
    })
      .then(function (response) {
        return response.json().then(
          function (body) {
            return { response: response, body: body };
          },
          function () {
            return { response: response, body: {} };
          }
        );
      })
      .then(function (result) {
        if (result.response.status === 400 && result.body.errors) {
          invalid(form, box, result.body.errors);
          return null;
        }
        if (!result.response.ok) {
          var text = result.body.error ||
            (result.response.status === 403
              ? "This page is out of date. Reload it and try again."
              : "The request failed (HTTP " + result.response.status + ").");
          problem(box, text);
          return null;
        }
        return follow(result.body);
      })
      .then(function (data) {
        if (!data) return null;
        if (data.status === "failed") {
          problem(box, data.error || "The generator could not make this image.");
          return null;
        }
        var nodes = render(data);
        var holder = el("div", {}, nodes);
        var images = Array.prototype.slice.call(holder.querySelectorAll("img"));
        // Show the result once its pixels are here, with the time the visitor actually waited.
        return Promise.all(images.map(loaded)).then(function () {
          var ms = Math.round(performance.now() - started);
          holder.querySelectorAll("[data-elapsed]").forEach(function (span) {
            span.textContent = span.dataset.elapsed + ms + " ms";
          });
          setState(box, "done", Array.prototype.slice.call(holder.childNodes));
          // On a phone the result sits below the form: bring it into view.
          var rect = box.getBoundingClientRect();
          if (rect.bottom > window.innerHeight || rect.top < 0) {
            box.scrollIntoView({ block: "nearest", behavior: "smooth" });
          }
        });
      })
      .catch(function () {
        problem(box, "Could not reach the server. Check your connection and try again.");
      })
      .finally(function () {
        clearTimeout(slow);
        if (submitButton) submitButton.disabled = false;
      });
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (!window.fetch || !window.FormData || !window.Promise) return; // plain form posts then
    document.querySelectorAll("form[data-generate]").forEach(function (form) {
      form.noValidate = true; // our inline messages replace the browser's bubbles
      form.addEventListener("submit", function (event) {
        submit(form, event);
      });
      var box = document.getElementById(form.dataset.result);
      if (box) {
        box.addEventListener("click", function (event) {
          onAction(form, event);
        });
      }
    });
  });
})();
