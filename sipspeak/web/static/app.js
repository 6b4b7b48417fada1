// SipSpeak pages: menu collapse, operator status switcher, notifications, confirmations.
(function () {
  "use strict";
  var meta = document.querySelector('meta[name="csrf-token"]');
  var csrf = meta ? meta.getAttribute("content") : "";

  function postJson(url, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf},
      body: JSON.stringify(body || {})
    });
  }
  window.sipspeak = {postJson: postJson, csrf: csrf};

  var shell = document.getElementById("shell");
  var toggle = document.getElementById("menu-toggle");
  if (shell && toggle) {
    var collapsed = window.localStorage.getItem("sipspeak.menu") === "collapsed";
    var apply = function () {
      shell.classList.toggle("collapsed", collapsed);
      toggle.setAttribute("aria-expanded", collapsed ? "false" : "true");
    };
    apply();
    toggle.addEventListener("click", function () {
      collapsed = !collapsed;
      window.localStorage.setItem("sipspeak.menu", collapsed ? "collapsed" : "open");
      apply();
    });
  }

  var state = document.getElementById("agent-state");
  if (state) {
    state.addEventListener("change", function () {
      var chosen = state.value;
      state.disabled = true;
      postJson(state.getAttribute("data-url"), {state: chosen}).then(function (response) {
        state.disabled = false;
        state.classList.toggle("failed", !response.ok);
      }, function () {
        state.disabled = false;
        state.classList.add("failed");
      });
    });
  }

  // «Скорость соединения»: time a download from the server (web/linkspeed.py); the figure is
  // kept for half an hour so that pages do not repeat it.
  var speed = document.getElementById("link-speed");
  if (speed && window.fetch && window.performance) {
    var showSpeed = function (mbps) {
      var shown = mbps < 10 ? mbps.toFixed(1) : String(Math.round(mbps));
      speed.textContent = " | " + speed.getAttribute("data-text").replace("{mbps}", shown);
      speed.hidden = false;
    };
    var kept = null;
    try { kept = JSON.parse(window.localStorage.getItem("sipspeak.speed") || "null"); } catch (e) { kept = null; }
    if (kept && typeof kept.mbps === "number" && Date.now() - kept.at < 30 * 60 * 1000) {
      showSpeed(kept.mbps);
    } else {
      var started = performance.now();
      fetch("/api/v1/link-speed", {credentials: "same-origin", cache: "no-store"}).then(function (response) {
        if (!response.ok) { return null; }
        return response.arrayBuffer().then(function (body) {
          var seconds = Math.max((performance.now() - started) / 1000, 0.001);
          var mbps = body.byteLength * 8 / seconds / 1e6;
          window.localStorage.setItem("sipspeak.speed", JSON.stringify({mbps: mbps, at: Date.now()}));
          showSpeed(mbps);
        });
      }).catch(function () { return null; });
    }
  }

  document.querySelectorAll("[data-read-notification]").forEach(function (button) {
    button.addEventListener("click", function () {
      var id = button.getAttribute("data-read-notification");
      postJson("/api/v1/notifications/" + id + "/read").then(function (response) {
        if (response.ok) { button.parentNode.remove(); }
      });
    });
  });

  // A search box narrowing the options of a list (pick users for a group).
  document.querySelectorAll("input[data-filter]").forEach(function (input) {
    var select = document.querySelector(input.getAttribute("data-filter"));
    if (!select) { return; }
    input.addEventListener("input", function () {
      var needle = input.value.trim().toLowerCase();
      Array.prototype.forEach.call(select.options, function (option) {
        option.hidden = needle !== "" && option.textContent.toLowerCase().indexOf(needle) < 0;
      });
    });
  });

  // After a rejected form post, mark the input the server named.
  var main = document.querySelector("main[data-error-field]");
  if (main) {
    var name = main.getAttribute("data-error-field");
    var first = null;
    main.querySelectorAll("input, select").forEach(function (input) {
      if (input.name === name) {
        input.classList.add("invalid");
        input.setAttribute("aria-invalid", "true");
        first = first || input;
      }
    });
    if (first) { first.focus(); }
  }

  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.getAttribute("data-confirm"))) { event.preventDefault(); }
    });
  });
})();
