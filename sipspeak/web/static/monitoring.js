// «Мониторинг»: draw the queues and their operators, keep them live over a WebSocket (the
// server pushes the picture when it changes) and count «Время» on between pushes; an
// operator whose call is on hold shows «На удержании» for as long as it lasts.
(function () {
  "use strict";
  var root = document.getElementById("monitoring");
  if (!root) { return; }
  var link = document.getElementById("monitoring-link");
  var label = function (name) { return root.getAttribute("data-" + name) || ""; };
  var live = window.SipLive;
  var element = live.element, timed = live.timed;

  // «Слушать»: the supervisor's own phone or softphone is rung and hears the conversation.
  function listenButton(operatorId) {
    var button = element("button", label("listen"), "link listen");
    button.type = "button";
    button.setAttribute("data-listen", operatorId);
    button.addEventListener("click", function () {
      var note = document.getElementById("monitoring-note");
      window.sipspeak.postJson("/api/v1/monitoring/listen", {operator_id: operatorId})
        .then(function (response) {
          return response.json().then(function (body) {
            note.textContent = response.ok ? label("listen-started")
              : ((body.error && body.error.message) || "");
          });
        });
    });
    return button;
  }

  function queue(q) {
    var box = element("section", null, "panel monitoring-queue");
    box.setAttribute("data-project", q.project_id);
    box.appendChild(element("h2", q.project));
    if (!q.running) { box.appendChild(element("p", label("stopped"), "muted")); }
    box.appendChild(element("p", label("strategy") + ": " + q.strategy_label));
    box.appendChild(element("p", label("phones").replace("{online}", q.phones_online)
      .replace("{offline}", q.phones_offline), "phones"));
    var table = element("table", null, "list");
    var head = table.createTHead().insertRow();
    ["number", "name", "status", "time"].forEach(function (k) {
      head.appendChild(element("th", label(k)));
    });
    head.appendChild(element("th", ""));
    var body = table.createTBody();
    q.operators.forEach(function (o, i) {
      var row = body.insertRow();
      row.className = "state-" + o.state + (o.on_hold ? " on-hold" : "");
      row.setAttribute("data-operator", o.id);
      row.appendChild(element("td", (i + 1) + ")"));
      row.appendChild(element("td", o.name));
      // A call on hold shows «На удержании», «Время» counted from the hold's start.
      row.appendChild(element("td", o.on_hold ? label("on-hold") : o.state_label, "state"));
      row.appendChild(timed("td", o.on_hold ? o.hold_since_ms
        : (o.state === "offline" ? null : o.since_ms)));
      var act = row.insertCell();
      if (o.state === "talking") { act.appendChild(listenButton(o.id)); }
    });
    box.appendChild(table);
    var waiting = element("p", label("waiting") + ": ", "waiting");
    waiting.appendChild(element("strong", q.waiting, "count"));
    if (q.oldest_waiting_since_ms !== null) {
      waiting.appendChild(document.createTextNode(" ("));
      waiting.appendChild(timed("span", q.oldest_waiting_since_ms));
      waiting.appendChild(document.createTextNode(")"));
    }
    box.appendChild(waiting);
    box.appendChild(dialling(q));
    return box;
  }

  // «Тип автонабора», calls ringing now, and since the campaign started: persons who
  // answered, those abandoned (with the rate the pacer holds under its target), dials
  // withdrawn still ringing.
  function dialling(q) {
    var p = element("p", q.dial_mode_label + " · " + label("dialling") + ": ", "dialling");
    p.appendChild(element("strong", q.dialling, "count"));
    var rate = (q.abandon_rate * 100).toLocaleString(document.documentElement.lang || "ru",
      {minimumFractionDigits: 1, maximumFractionDigits: 1});
    var text = " · " + label("since-start") + ": " + label("persons") + " " + q.persons +
      ", " + label("abandoned") + " " + q.abandoned + " (" + rate + " %)";
    if (q.dial_mode === "predictive") { text += ", " + label("withdrawn") + " " + q.withdrawn; }
    p.appendChild(document.createTextNode(text));
    return p;
  }

  function draw(picture) {
    while (root.firstChild) { root.removeChild(root.firstChild); }
    if (!picture) { root.appendChild(element("p", label("unavailable"), "muted")); return; }
    live.sync(picture.now_ms);
    if (!picture.queues.length) { root.appendChild(element("p", label("empty"), "muted")); }
    picture.queues.forEach(function (q) { root.appendChild(queue(q)); });
    root.setAttribute("data-now", picture.now_ms);
  }

  var initial = document.getElementById("monitoring-initial");
  draw(initial ? JSON.parse(initial.textContent) : null);
  window.setInterval(function () { live.tick(root); }, 1000);
  if (initial && initial.textContent !== "null") {
    live.connect(root.getAttribute("data-url"), draw, link, label("signed-out"));
  }
})();
