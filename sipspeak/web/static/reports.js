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
