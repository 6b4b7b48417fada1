// Project pages: launch switch, interval / card field / task rule rows, the script editor.
(function () {
  "use strict";

  document.querySelectorAll("input[data-autosubmit]").forEach(function (box) {
    box.addEventListener("change", function () { box.form.submit(); });
  });

  document.addEventListener("click", function (event) {
    var target = event.target;
    if (!(target instanceof Element)) { return; }
    var remove = target.closest("[data-remove-row]");
    if (remove) {
      var row = remove.closest(".interval, li, .rule");
      if (row) { row.remove(); }
    }
  });

  function fromTemplate(id) {
    var template = document.getElementById(id);
    return template ? template.content.firstElementChild.cloneNode(true) : null;
  }

  document.querySelectorAll("[data-add-interval]").forEach(function (button) {
    button.addEventListener("click", function () {
      var row = fromTemplate("interval-template");
      if (!row) { return; }
      row.querySelector('input[name="interval_weekday"]').value = button.getAttribute("data-add-interval");
      button.closest("tr").querySelector(".intervals").appendChild(row);
    });
  });

  var addField = document.getElementById("add-card-field");
  var newField = document.getElementById("new-card-field");
  var fields = document.getElementById("card-fields");
  if (addField && newField && fields) {
    var add = function () {
      var name = newField.value.trim();
      if (!name) { return; }
      var item = fromTemplate("card-field-template");
      item.querySelector("input").value = name;
      fields.appendChild(item);
      newField.value = "";
    };
    addField.addEventListener("click", add);
    newField.addEventListener("keydown", function (event) {
      if (event.key === "Enter") { event.preventDefault(); add(); }
    });
  }

  var addRule = document.getElementById("add-rule");
  var rules = document.getElementById("task-rules");
  if (addRule && rules) {
    addRule.addEventListener("click", function () {
      var row = fromTemplate("rule-template");
      if (row) { rules.appendChild(row); }
    });
  }

  var editor = document.getElementById("script-editor");
  var hidden = document.getElementById("script-html");
  if (editor && hidden) {
    document.querySelectorAll(".toolbar [data-cmd]").forEach(function (button) {
      button.addEventListener("mousedown", function (event) { event.preventDefault(); });
      button.addEventListener("click", function () {
        var command = button.getAttribute("data-cmd");
        var argument = button.getAttribute("data-arg");
        editor.focus();
        if (command === "createLink") {
          argument = window.prompt(button.getAttribute("data-prompt") || "URL", "https://");
          if (!argument) { return; }
        }
        document.execCommand(command, false, argument);
      });
    });
    hidden.form.addEventListener("submit", function () { hidden.value = editor.innerHTML; });
    // «Загрузить в текстовом формате»: the server turns a .txt or .html file into the
    // script's sanitised HTML; the editor shows it, «Сохранить» keeps it.
    var file = document.getElementById("script-file");
    var fileError = document.getElementById("script-file-error");
    if (file && fileError) {
      var failed = function (message) {
        fileError.textContent = message || file.getAttribute("data-failed");
        fileError.hidden = false;
      };
      file.addEventListener("change", function () {
        var chosen = file.files && file.files[0];
        if (!chosen) { return; }
        var body = new FormData();
        body.append("file", chosen, chosen.name);
        fileError.hidden = true;
        fetch(file.getAttribute("data-url"), {
          method: "POST", credentials: "same-origin", body: body,
          headers: {"Accept": "application/json", "X-CSRF-Token": window.sipspeak ? window.sipspeak.csrf : ""}
        }).then(function (response) {
          return response.json().then(function (answer) {
            if (response.ok && typeof answer.html === "string") {
              editor.innerHTML = answer.html;
              editor.focus();
            } else {
              failed(answer && answer.error ? answer.error.message : "");
            }
          });
        }).catch(function () { failed(""); }).then(function () { file.value = ""; });
      });
    }
  }
})();
