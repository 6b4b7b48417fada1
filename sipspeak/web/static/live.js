// What the live pages («Мониторинг», «Рабочее место») share: times counted on from the
// server's clock between pushes, small DOM builders, and the push socket that reconnects with
// backoff until the sign-in is gone.
(function () {
  "use strict";
  var offset = 0;  // server clock − this clock, ms

  function two(n) { return (n < 10 ? "0" : "") + n; }

  // «Время» since an instant on the server's clock: [h:]mm:ss.
  function clock(sinceMs) {
    if (sinceMs === null || sinceMs === undefined) { return ""; }
    var total = Math.max(0, Math.floor((Date.now() + offset - sinceMs) / 1000));
    var h = Math.floor(total / 3600), m = Math.floor(total % 3600 / 60), s = total % 60;
    return (h ? h + ":" + two(m) : two(m)) + ":" + two(s);
  }

  function element(tag, text, cls) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    if (cls) { node.className = cls; }
    return node;
  }

  // Time left until untilMs on the server's clock: [h:]mm:ss, 00:00 once it passed.
  function left(untilMs) {
    if (untilMs === null || untilMs === undefined) { return ""; }
    var total = Math.max(0, Math.ceil((untilMs - Date.now() - offset) / 1000));
    var h = Math.floor(total / 3600), m = Math.floor(total % 3600 / 60), s = total % 60;
    return (h ? h + ":" + two(m) : two(m)) + ":" + two(s);
  }

  // An element counting on from sinceMs (every second, see tick).
  function timed(tag, sinceMs) {
    var node = element(tag, clock(sinceMs), "since");
    if (sinceMs !== null && sinceMs !== undefined) { node.setAttribute("data-since", sinceMs); }
    return node;
  }

  function tick(root) {
    var cells = root.querySelectorAll("[data-since]");
    for (var i = 0; i < cells.length; i++) {
      cells[i].textContent = clock(Number(cells[i].getAttribute("data-since")));
    }
    var counts = root.querySelectorAll("[data-until]");
    for (var j = 0; j < counts.length; j++) {
      counts[j].textContent = left(Number(counts[j].getAttribute("data-until")));
    }
  }

  // Open the push at path; onPicture gets every picture.  While it is down, link shows; a
  // refused handshake looks like any other close, so /api/v1/me tells whether we are still
  // signed in: if not, link says signedOut and nothing more is tried.
  function connect(path, onPicture, link, signedOut) {
    var retry = 1000;
    function again() {
      window.setTimeout(open, retry);
      retry = Math.min(retry * 2, 15000);
    }
    function open() {
      var url = new URL(path, window.location.href);
      url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
      var socket = new WebSocket(url.toString());
      socket.onopen = function () { retry = 1000; link.hidden = true; };
      socket.onmessage = function (event) { onPicture(JSON.parse(event.data)); };
      socket.onclose = function () {
        link.hidden = false;
        fetch("/api/v1/me", {credentials: "same-origin"}).then(function (r) {
          if (r.status === 401 || r.status === 403) { link.textContent = signedOut; return; }
          again();
        }, again);
      };
    }
    open();
  }

  window.SipLive = {
    clock: clock, left: left, element: element, timed: timed, tick: tick, connect: connect,
    // The server's "now" in a picture: times on the page count from its clock.
    sync: function (serverNowMs) { offset = serverNowMs - Date.now(); }
  };
})();
