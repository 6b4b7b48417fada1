// «Мониторинг»: draw the queues and their operators, keep them live over a WebSocket (the
// server pushes the picture when it changes) and count «Время» on between pushes.
(function () {
  "use strict";
  var root = document.getElementById("monitoring");
  if (!root) { return; }
  var link = document.getElementById("monitoring-link");
  var label = function (name) { return root.getAttribute("data-" + name) || ""; };
  var offset = 0;  // server clock − this clock, ms
  var retry = 1000;

  function clock(sinceMs) {
    if (sinceMs === null || sinceMs === undefined) { return ""; }
    var total = Math.max(0, Math.floor((Date.now() + offset - sinceMs) / 1000));
    var h = Math.floor(total / 3600), m = Math.floor(total % 3600 / 60), s = total % 60;
    var two = function (n) { return (n < 10 ? "0" : "") + n; };
    return (h ? h + ":" + two(m) : two(m)) + ":" + two(s);
  }

  function element(tag, text, cls) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    if (cls) { node.className = cls; }
    return node;
  }

  function timed(tag, sinceMs) {
    var node = element(tag, clock(sinceMs), "since");
    if (sinceMs !== null && sinceMs !== undefined) { node.setAttribute("data-since", sinceMs); }
    return node;
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
    var body = table.createTBody();
    q.operators.forEach(function (o, i) {
      var row = body.insertRow();
      row.className = "state-" + o.state;
      row.setAttribute("data-operator", o.id);
      row.appendChild(element("td", (i + 1) + ")"));
      row.appendChild(element("td", o.name));
      row.appendChild(element("td", o.state_label, "state"));
      row.appendChild(timed("td", o.state === "offline" ? null : o.since_ms));
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
    return box;
  }

  function draw(picture) {
    while (root.firstChild) { root.removeChild(root.firstChild); }
    if (!picture) { root.appendChild(element("p", label("unavailable"), "muted")); return; }
    offset = picture.now_ms - Date.now();
    if (!picture.queues.length) { root.appendChild(element("p", label("empty"), "muted")); }
    picture.queues.forEach(function (q) { root.appendChild(queue(q)); });
    root.setAttribute("data-now", picture.now_ms);
  }

  function tick() {
    var cells = root.querySelectorAll("[data-since]");
    for (var i = 0; i < cells.length; i++) {
      cells[i].textContent = clock(Number(cells[i].getAttribute("data-since")));
    }
  }

  function again() {
    window.setTimeout(connect, retry);
    retry = Math.min(retry * 2, 15000);
  }

  function connect() {
    var url = new URL(root.getAttribute("data-url"), window.location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    var socket = new WebSocket(url.toString());
    socket.onopen = function () { retry = 1000; link.hidden = true; };
    socket.onmessage = function (event) { draw(JSON.parse(event.data)); };
    socket.onclose = function () {
      link.hidden = false;
      // A refused handshake looks like any other close: ask whether we may still look.
      fetch("/api/v1/me", {credentials: "same-origin"}).then(function (r) {
        if (r.status === 401 || r.status === 403) {
          link.textContent = label("signed-out");
          return;
        }
        again();
      }, again);
    };
  }

  var initial = document.getElementById("monitoring-initial");
  draw(initial ? JSON.parse(initial.textContent) : null);
  window.setInterval(tick, 1000);
  if (initial && initial.textContent !== "null") { connect(); }
})();
