// «Рабочее место»: the operator's state and calls, pushed by the server over a WebSocket; the
// client card of the call's contact pops up when a call rings him or is joined to him and
// stays during wrap-up («В карточке»), which saving the card (or «Завершить обработку») ends.
(function () {
  "use strict";
  var root = document.getElementById("workspace");
  if (!root) { return; }
  var label = function (name) { return root.getAttribute("data-" + name) || ""; };
  var byId = function (id) { return document.getElementById(id); };
  var link = byId("ws-link");
  var live = window.SipLive;
  var element = live.element, timed = live.timed, clock = live.clock;
  var picture = null;
  var cardContact = null;  // the contact whose card is mounted
  var cardFinishes = false;  // saving it ends the wrap-up

  var post = window.sipspeak.postJson;  // app.js: JSON with the CSRF token

  function callBox(call) {
    var box = element("div", null, "ws-call" + (call.offered ? " offered" : ""));
    box.setAttribute("data-call", call.id);
    var title = call.offered ? label("offered")
      : label(call.direction === "inbound" ? "inbound" : "outbound");
    box.appendChild(element("strong", title + ": " + call.phone, "ws-call-title"));
    var facts = element("p", null, "ws-call-facts");
    facts.appendChild(element("span", call.phase_label, "phase"));
    if (call.on_hold) {  // «На удержании» and for how long
      var hold = element("span", " · " + label("on-hold") + " ", "ws-hold");
      hold.appendChild(timed("span", call.hold_since_ms));
      facts.appendChild(hold);
    }
    if (call.project) { facts.appendChild(element("span", " · " + label("project") + ": " + call.project)); }
    facts.appendChild(document.createTextNode(" · " + label("duration") + ": "));
    facts.appendChild(timed("span", call.bridged_ms || call.started_ms));
    box.appendChild(facts);
    return box;
  }

  var chosenTask = null;  // a task's contact he opened by hand, while he has no call

  function when(ms) {
    var d = new Date(ms);
    var two = function (n) { return (n < 10 ? "0" : "") + n; };
    return two(d.getDate()) + "-" + two(d.getMonth() + 1) + "-" + d.getFullYear() + " " +
      two(d.getHours()) + ":" + two(d.getMinutes());
  }

  function drawTasks(p) {
    var list = byId("ws-tasks");
    while (list.firstChild) { list.removeChild(list.firstChild); }
    if (!p.tasks.length) { list.appendChild(element("li", label("no-tasks"), "muted")); }
    p.tasks.forEach(function (t) {
      var item = element("li", null, "ws-task" + (t.due ? " due" : ""));
      item.setAttribute("data-task", t.id);
      item.appendChild(element("strong", when(t.due_at) + (t.due ? " (" + label("task-due") + ")" : "")));
      item.appendChild(document.createTextNode(" " + t.phone + (t.name ? " · " + t.name : "") +
        (t.text ? " — " + t.text : "") + (t.auto_call ? " · " + label("task-auto") : "")));
      var open = element("button", label("task-open"), "link");
      open.type = "button";
      open.addEventListener("click", function () {
        chosenTask = {contact: t.contact_id, phone: t.phone, finishes: false};
        showCard(picture);
      });
      item.appendChild(document.createTextNode(" "));
      item.appendChild(open);
      list.appendChild(item);
    });
  }

  // Which card to show: the call he talks on, else the one ringing him, else — during
  // wrap-up — his last call's, else a task's card he opened.
  function cardOf(p) {
    var joined = p.calls.filter(function (c) { return !c.offered; });
    var offered = p.calls.filter(function (c) { return c.offered; });
    var call = joined[0] || offered[0];
    if (call) { return {contact: call.contact_id, phone: call.phone, finishes: false}; }
    if (p.state === "wrap_up" && p.last_call) {
      return {contact: p.last_call.contact_id, phone: p.last_call.phone, finishes: true};
    }
    return chosenTask;
  }

  function showCard(p) {
    var wanted = cardOf(p);
    var holder = byId("ws-card");
    var caption = byId("ws-card-caption");
    if (!wanted) {
      // The last card stays (what he typed is not lost) until another call brings its own.
      caption.textContent = "";
      cardFinishes = false;
      holder.setAttribute("data-finish-wrap-up", "false");
      return;
    }
    caption.textContent = wanted.contact ? "" : label("no-contact") + " (" + wanted.phone + ")";
    if (wanted.contact === cardContact && wanted.finishes === cardFinishes) { return; }
    if (wanted.contact === cardContact && cardContact !== null && window.SipCard) {
      cardFinishes = wanted.finishes;  // same card, the call ended: keep what he typed
      holder.setAttribute("data-finish-wrap-up", cardFinishes ? "true" : "false");
      return;
    }
    while (holder.firstChild) { holder.removeChild(holder.firstChild); }
    cardContact = wanted.contact;
    cardFinishes = wanted.finishes;
    holder.setAttribute("data-contact", cardContact === null ? "" : cardContact);
    holder.setAttribute("data-finish-wrap-up", cardFinishes ? "true" : "false");
    if (cardContact !== null && window.SipCard) {
      // Read when the card is saved: the same card may be opened on a call and saved after it.
      window.SipCard.mount(holder, cardContact, {
        get finishWrapUp() { return holder.getAttribute("data-finish-wrap-up") === "true"; },
        operatorId: picture.user_id
      });
    }
  }

  function draw(p) {
    picture = p;
    live.sync(p.now_ms);
    root.setAttribute("data-state", p.state);
    byId("ws-state").textContent = p.state_label;
    var since = byId("ws-since");
    since.textContent = clock(p.since_ms);
    if (p.since_ms !== null) { since.setAttribute("data-since", p.since_ms); }
    else { since.removeAttribute("data-since"); }
    byId("ws-phone").textContent = label("phone-" + p.phone);
    byId("ws-telephony").hidden = p.telephony;
    byId("ws-finish").hidden = p.state !== "wrap_up";
    var ends = byId("ws-wrap-up-left");
    byId("ws-wrap-up").hidden = p.wrap_up_ends_ms === null || p.wrap_up_ends_ms === undefined;
    if (byId("ws-wrap-up").hidden) { ends.removeAttribute("data-until"); }
    else {
      ends.setAttribute("data-until", p.wrap_up_ends_ms);
      ends.textContent = live.left(p.wrap_up_ends_ms);
    }
    var calls = byId("ws-calls");
    while (calls.firstChild) { calls.removeChild(calls.firstChild); }
    if (!p.calls.length) { calls.appendChild(element("p", label("no-call"), "muted")); }
    p.calls.forEach(function (c) { calls.appendChild(callBox(c)); });
    if (p.calls.length || p.state === "wrap_up") { chosenTask = null; }
    drawTasks(p);
    showCard(p);
  }

  byId("ws-finish").addEventListener("click", function () {
    post(root.getAttribute("data-state-url"), {state: "card_saved"});
  });

  byId("ws-dial").addEventListener("submit", function (event) {
    event.preventDefault();
    var result = byId("ws-dial-result");
    var phone = byId("ws-dial-phone").value;
    result.textContent = "";
    post(root.getAttribute("data-call-url"), {operator_id: picture.user_id, phone: phone})
      .then(function (response) {
        return response.json().then(function (body) {
          if (response.ok) { result.textContent = label("dial-started"); return; }
          var message = body && body.error && body.error.message;
          result.textContent = label("dial-failed") + (message ? ": " + message : "");
        });
      }, function () { result.textContent = label("dial-failed"); });
  });

  var softphone = byId("ws-softphone");
  if (softphone && window.SipSoftphone) { window.SipSoftphone.mount(softphone, {}); }

  draw(JSON.parse(byId("workspace-initial").textContent));
  window.setInterval(function () { live.tick(root); }, 1000);
  live.connect(root.getAttribute("data-url"), draw, link, label("signed-out"));
})();
