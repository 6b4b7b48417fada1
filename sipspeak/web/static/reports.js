// Reports: the column chooser hides and shows the table's columns («Все» toggles them all).
(function () {
  "use strict";
  var chooser = document.getElementById("report-columns");
  var table = document.getElementById("operator-statistics") ||
    document.getElementById("calls-report") || document.getElementById("contacts-report");
  if (!chooser || !table) { return; }
  var boxes = chooser.querySelectorAll("input[data-column]");

  function apply() {
    for (var i = 0; i < boxes.length; i++) {
      var name = boxes[i].getAttribute("data-column");
      if (name === "all") { continue; }
      var cells = table.querySelectorAll('[data-column="' + name + '"]');
      for (var j = 0; j < cells.length; j++) { cells[j].hidden = !boxes[i].checked; }
    }
  }

  chooser.addEventListener("change", function (event) {
    var box = event.target;
    if (box.getAttribute("data-column") === "all") {
      for (var i = 0; i < boxes.length; i++) { boxes[i].checked = box.checked; }
    }
    apply();
  });
})();

// «Контакты» (§6.1, §6.1.1): a click on a row opens the contact's card below it (static/card.js);
// the checkboxes choose contacts for «Удалить» (after a confirmation; contacts being dialled
// right now are left, and the answer says how many).
(function () {
  "use strict";
  var table = document.getElementById("contacts-report");
  if (!table || !window.SipCard) { return; }
  var all = document.getElementById("contacts-select-all");
  var remove = document.getElementById("contacts-delete");
  var result = document.getElementById("contacts-delete-result");

  function chosen() {
    return Array.prototype.filter.call(table.querySelectorAll("input.contact-select"),
      function (box) { return box.checked; });
  }

  function toggle(row) {
    var next = row.nextElementSibling;
    if (next && next.classList.contains("sipcard-row")) {
      next.remove();
      row.classList.remove("open");
      return;
    }
    var holder = document.createElement("tr");
    holder.className = "sipcard-row";
    var cell = holder.insertCell();
    cell.colSpan = row.cells.length;
    var box = document.createElement("div");
    box.className = "sipcard-holder";
    // The table scrolls sideways: the card keeps to the visible width and stays in view.
    box.style.width = Math.max(320, table.parentNode.clientWidth - 24) + "px";
    cell.appendChild(box);
    row.parentNode.insertBefore(holder, row.nextSibling);
    row.classList.add("open");
    window.SipCard.mount(box, Number(row.getAttribute("data-contact")), {});
  }

  table.addEventListener("click", function (event) {
    if (event.target.closest("input, button, a, .sipcard-row")) { return; }
    var row = event.target.closest("tr[data-contact]");
    if (row) { toggle(row); }
  });
  table.addEventListener("keydown", function (event) {
    var row = event.target;
    if ((event.key === "Enter" || event.key === " ") && row.matches("tr[data-contact]")) {
      event.preventDefault();
      toggle(row);
    }
  });

  if (all) {
    all.addEventListener("change", function () {
      table.querySelectorAll("input.contact-select").forEach(function (box) {
        box.checked = all.checked;
      });
    });
  }

  if (remove) {
    remove.addEventListener("click", function () {
      var boxes = chosen();
      if (!boxes.length) { return; }
      var question = remove.getAttribute("data-confirm").replace("{count}", boxes.length);
      if (!window.confirm(question)) { return; }
      remove.disabled = true;
      fetch("/api/v1/contacts", {
        method: "DELETE", credentials: "same-origin",
        headers: {"Content-Type": "application/json", "X-CSRF-Token": window.sipspeak.csrf},
        body: JSON.stringify({ids: boxes.map(function (b) { return Number(b.value); })})
      }).then(function (response) {
        return response.json().then(function (data) { return {ok: response.ok, data: data}; });
      }).then(function (r) {
        remove.disabled = false;
        result.hidden = false;
        if (!r.ok) {
          result.className = "error";
          result.textContent = (r.data.error && r.data.error.message) || "";
          return;
        }
        result.className = "notice";
        result.textContent = remove.getAttribute("data-done")
          .replace("{deleted}", r.data.deleted).replace("{skipped}", r.data.skipped)
          .replace("{dialing}", r.data.dialing);
        r.data.ids.forEach(function (id) {
          var row = table.querySelector('tr[data-contact="' + id + '"]');
          if (!row) { return; }
          var next = row.nextElementSibling;
          if (next && next.classList.contains("sipcard-row")) { next.remove(); }
          row.remove();
        });
      });
    });
  }
})();
