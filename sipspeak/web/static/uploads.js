// Base upload page: poll the import's progress until it ends, then show the result.
(function () {
  "use strict";
  var box = document.getElementById("import-status");
  if (!box || box.getAttribute("data-state") !== "running") { return; }
  var url = box.getAttribute("data-progress-url");
  var bar = document.getElementById("import-progress");
  var rows = box.querySelector('[data-field="rows_done"]');
  var delay = 500;

  function poll() {
    fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (progress) {
        if (progress === null) { window.setTimeout(poll, 2000); return; }
        if (progress.state !== "running") { window.location.reload(); return; }
        if (bar && progress.percent !== null) { bar.value = progress.percent; }
        if (rows) { rows.textContent = String(progress.rows_done); }
        delay = Math.min(delay * 1.5, 3000);
        window.setTimeout(poll, delay);
      }, function () { window.setTimeout(poll, 2000); });
  }
  window.setTimeout(poll, delay);
})();
