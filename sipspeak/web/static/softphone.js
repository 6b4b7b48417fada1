// The operator's browser softphone: a widget that takes calls over WebRTC.
//
//   window.SipSoftphone.mount(element, {url, me, texts}) -> widget
//
// renders its own small panel into `element` (state, the incoming call's number and project,
// «Ответить» / «Отклонить», «Положить трубку», microphone mute, «Удержать» / «Снять с
// удержания», a keypad during the call and an <audio autoplay> for the far end).  Signalling is the JSON WebSocket `url`
// (/api/v1/softphone): the server offers each call with an SDP offer ("ring"); answering
// captures the microphone, applies the offer and sends the SDP answer once ICE gathering is
// done (webrtc-pc §4.4.1.1; later candidates trickle, RFC 8838).  Hold is asked of the
// server ("hold" / "unhold" with the call's id): it plays the customer the project's music on
// hold instead of this microphone; the button follows the server's "held" answer.  The socket reconnects with
// backoff, but not once the sign-in is gone (`me`, /api/v1/me, answers 401).  Elements with
// [data-softphone] are mounted on load with their data-url / data-me / data-texts; without
// `texts` the widget asks GET `url` for them (the catalogue, in the user's language).
(function () {
  "use strict";
  if (window.SipSoftphone) { return; }

  var STYLE = [
    ".sip-softphone{border:1px solid #e2e6ee;border-radius:10px;background:#fff;padding:.8rem;",
    "max-width:22rem;display:flex;flex-direction:column;gap:.5rem}",
    ".sip-softphone .sp-head{display:flex;justify-content:space-between;gap:.6rem;align-items:baseline}",
    ".sip-softphone .sp-status{color:#7a8499;font-size:.9rem}",
    ".sip-softphone[data-state=ringing] .sp-status{color:#b36b00;font-weight:600}",
    ".sip-softphone[data-state=in_call] .sp-status{color:#1b7f3b;font-weight:600}",
    ".sip-softphone[data-hold=on] .sp-status{color:#b36b00}",
    ".sip-softphone .sp-call p{margin:.15rem 0}",
    ".sip-softphone .sp-actions{display:flex;flex-wrap:wrap;gap:.4rem}",
    ".sip-softphone .sp-answer{background:#2e7d32;color:#fff}",
    ".sip-softphone .sp-decline,.sip-softphone .sp-hangup{background:#c62828;color:#fff}",
    ".sip-softphone .sp-keypad{display:grid;grid-template-columns:repeat(3,2.6rem);gap:.3rem}",
    ".sip-softphone [hidden]{display:none!important}"
  ].join("");

  function styleOnce() {
    if (document.getElementById("sip-softphone-style")) { return; }
    var style = document.createElement("style");
    style.id = "sip-softphone-style";
    style.textContent = STYLE;
    document.head.appendChild(style);
  }

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) { node.className = cls; }
    if (text !== undefined) { node.textContent = text; }
    return node;
  }

  function Softphone(element, options) {
    this.element = element;
    this.url = options.url || "/api/v1/softphone";
    this.me = options.me || "/api/v1/me";
    this.texts = options.texts || {};
    this.socket = null;
    this.retryMs = 1000;
    this.stopped = false;
    this.state = "connecting";  // connecting ready offline unavailable signed_out ringing answering in_call
    this.ring = null;           // the "ring" message being offered / talked on
    this.tone = null;           // the ringtone playing while a call offers itself
    this.pc = null;
    this.microphone = null;
    this.muted = false;
    this.held = false;          // the server confirmed the call is on hold
    this.holdPending = false;   // a hold / unhold was sent, its answer not come yet
    this.note = "";
    if (options.texts) {
      this.start();
    } else {  // mounted by another page: the texts come in the user's language from the API
      var self = this;
      fetch(this.url, {credentials: "same-origin", headers: {Accept: "application/json"}})
        .then(function (r) { return r.ok ? r.json() : {}; }, function () { return {}; })
        .then(function (body) { self.texts = body.texts || {}; self.start(); });
    }
  }

  Softphone.prototype.start = function () {
    if (this.stopped) { return; }
    this.render();
    this.connect();
  };

  Softphone.prototype.t = function (key) { return this.texts[key] || key; };

  Softphone.prototype.render = function () {
    styleOnce();
    var self = this;
    var root = el("div", "sip-softphone");
    var head = el("div", "sp-head");
    head.appendChild(el("strong", "sp-title", this.t("title")));
    this.statusNode = head.appendChild(el("span", "sp-status"));
    root.appendChild(head);
    this.callNode = root.appendChild(el("div", "sp-call"));
    this.noteNode = root.appendChild(el("p", "sp-note muted"));
    var actions = root.appendChild(el("div", "sp-actions"));
    function button(cls, key, handler) {
      var b = actions.appendChild(el("button", cls, self.t(key)));
      b.type = "button";
      b.addEventListener("click", handler);
      return b;
    }
    this.answerButton = button("sp-answer", "answer", function () { self.answer(); });
    this.declineButton = button("sp-decline", "decline", function () { self.decline(); });
    this.hangupButton = button("sp-hangup", "hangup", function () { self.hangup(); });
    this.muteButton = button("sp-mute secondary", "mute", function () { self.toggleMute(); });
    this.holdButton = button("sp-hold secondary", "hold", function () { self.toggleHold(); });
    this.keypad = root.appendChild(el("div", "sp-keypad"));
    "123456789*0#".split("").forEach(function (key) {
      var b = self.keypad.appendChild(el("button", "secondary small", key));
      b.type = "button";
      b.addEventListener("click", function () { self.dtmf(key); });
    });
    this.audio = root.appendChild(el("audio", "sp-audio"));
    this.audio.autoplay = true;
    this.element.textContent = "";
    this.element.appendChild(root);
    this.root = root;
    this.update();
  };

  // The ring the operator hears while a call offers itself (425 Hz, 1 s on, 3 s off, as
  // Russian ringing sounds); WebAudio, so no file to fetch. The page may not start audio
  // before the user touched it; the attribute tells the ring is wanted either way.
  Softphone.prototype.ringtone = function (on) {
    if (!!this.tone === on) { return; }
    this.root.setAttribute("data-ringtone", on ? "on" : "off");
    if (!on) {
      window.clearInterval(this.tone.timer);
      try { this.tone.osc.stop(); this.tone.ctx.close(); } catch (e) { /* already gone */ }
      this.tone = null;
      return;
    }
    var Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx) { this.tone = {timer: 0, osc: null, ctx: null}; return; }
    var ctx = new Ctx(), osc = ctx.createOscillator(), gain = ctx.createGain();
    osc.frequency.value = 425;
    gain.gain.value = 0;
    osc.connect(gain);
    gain.connect(ctx.destination);
    osc.start();
    var beat = 0;
    var timer = window.setInterval(function () {
      gain.gain.value = beat % 4 === 0 ? 0.2 : 0;
      beat += 1;
    }, 1000);
    gain.gain.value = 0.2;
    this.tone = {timer: timer, osc: osc, ctx: ctx};
  };

  Softphone.prototype.update = function () {
    var state = this.state, ring = this.ring;
    this.root.setAttribute("data-state", state);
    this.root.setAttribute("data-hold", this.held ? "on" : "off");
    this.ringtone(state === "ringing" && !(ring && ring.auto_answer));
    var label = {connecting: "connecting", ready: "ready", offline: "offline",
                 unavailable: "unavailable", signed_out: "signed_out", ringing: "incoming",
                 answering: "incoming", in_call: "in_call"}[state];
    this.statusNode.textContent = this.t(state === "in_call" && this.held ? "on_hold" : label);
    this.callNode.textContent = "";
    this.callNode.hidden = !ring;
    if (ring) {
      var number = this.callNode.appendChild(el("p"));
      number.appendChild(document.createTextNode(this.t("number") + ": "));
      number.appendChild(el("strong", "sp-number", ring.caller || ""));
      if (ring.project) {
        this.callNode.appendChild(el("p", "sp-project", this.t("project") + ": " + ring.project));
      }
      if (ring.auto_answer && state !== "in_call") {
        this.callNode.appendChild(el("p", "muted", this.t("auto_answer")));
      }
    }
    this.noteNode.textContent = this.note;
    this.noteNode.hidden = !this.note;
    this.answerButton.hidden = state !== "ringing";
    this.declineButton.hidden = state !== "ringing";
    this.hangupButton.hidden = !(state === "in_call" || state === "answering");
    this.muteButton.hidden = state !== "in_call";
    this.muteButton.textContent = this.t(this.muted ? "unmute" : "mute");
    this.holdButton.hidden = state !== "in_call";
    this.holdButton.disabled = this.holdPending;
    this.holdButton.textContent = this.t(this.held ? "unhold" : "hold");
    this.keypad.hidden = state !== "in_call";
  };

  Softphone.prototype.set = function (state, note) {
    this.state = state;
    if (note !== undefined) { this.note = note; }
    this.update();
  };

  // -- the signalling socket -------------------------------------------------------------
  Softphone.prototype.connect = function () {
    var self = this;
    if (this.stopped) { return; }
    var scheme = location.protocol === "https:" ? "wss:" : "ws:";
    var socket = new WebSocket(scheme + "//" + location.host + this.url);
    this.socket = socket;
    socket.onmessage = function (event) {
      var message;
      try { message = JSON.parse(event.data); } catch (e) { return; }
      self.receive(message);
    };
    socket.onclose = function () {
      if (self.socket !== socket) { return; }
      self.socket = null;
      self.drop();  // the server ends a call whose socket closed: so do we
      if (self.stopped) { return; }
      self.set("offline");
      self.retry();
    };
  };

  // Reconnect with backoff (1 s doubling to 30 s), unless the sign-in is gone.
  Softphone.prototype.retry = function () {
    var self = this;
    var delay = this.retryMs;
    this.retryMs = Math.min(this.retryMs * 2, 30000);
    setTimeout(function () {
      fetch(self.me, {credentials: "same-origin", headers: {Accept: "application/json"}})
        .then(function (response) {
          if (response.status === 401 || response.status === 403) {
            self.stopped = true;
            self.set("signed_out", "");
          } else {
            self.connect();
          }
        }, function () { self.retry(); });
    }, delay);
  };

  Softphone.prototype.send = function (message) {
    if (this.socket && this.socket.readyState === WebSocket.OPEN) {
      this.socket.send(JSON.stringify(message));
    }
  };

  Softphone.prototype.receive = function (message) {
    if (message.type === "hello") {
      this.retryMs = 1000;
      this.set(message.available ? "ready" : "unavailable", "");
    } else if (message.type === "ring") {
      if (this.ring) {  // busy on another call on this device
        this.send({type: "decline", ring: message.ring});
        return;
      }
      this.ring = message;
      this.set("ringing", "");
      if (message.auto_answer) { this.answer(); }
    } else if (message.type === "ended") {
      if (this.ring && this.ring.ring === message.ring) {
        this.drop();
        this.set("ready", this.t("ended"));
      }
    } else if (message.type === "held") {
      if (this.ring && this.ring.call === message.call) {
        this.held = !!message.on_hold;
        this.holdPending = false;
        this.update();
      }
    } else if (message.type === "error") {
      this.holdPending = false;
      this.note = this.t("error") + ": " + (message.message || message.error || "");
      if (this.ring && message.error === "bad_answer") { this.drop(); this.state = "ready"; }
      this.update();
    }
  };

  // -- the call ---------------------------------------------------------------------------
  Softphone.prototype.answer = function () {
    var self = this, ring = this.ring;
    if (!ring || this.state !== "ringing") { return; }
    this.set("answering");
    var pc = new RTCPeerConnection({iceServers: []});
    this.pc = pc;
    var sent = false;
    pc.addEventListener("track", function (event) {
      self.audio.srcObject = event.streams[0] || new MediaStream([event.track]);
    });
    pc.addEventListener("icecandidate", function (event) {
      if (!sent || self.pc !== pc) { return; }  // before the answer: it is in the SDP
      var c = event.candidate;
      self.send({type: "candidate", ring: ring.ring, candidate: c ? c.candidate : "",
                 sdpMid: c ? c.sdpMid : null});
    });
    pc.addEventListener("connectionstatechange", function () {
      if (self.pc !== pc) { return; }
      if (pc.connectionState === "connected" && self.state === "answering") {
        self.set("in_call");
      } else if (pc.connectionState === "failed") {
        self.send({type: "hangup", ring: ring.ring});
        self.drop();
        self.set(self.socket ? "ready" : "offline", self.t("ended"));
      }
    });
    navigator.mediaDevices.getUserMedia({audio: true}).then(function (stream) {
      if (self.pc !== pc) { stream.getTracks().forEach(function (t) { t.stop(); }); return; }
      self.microphone = stream;
      stream.getAudioTracks().forEach(function (track) { pc.addTrack(track, stream); });
      return pc.setRemoteDescription({type: "offer", sdp: ring.sdp})
        .then(function () { return pc.createAnswer(); })
        .then(function (answer) { return pc.setLocalDescription(answer); })
        .then(function () { return gathered(pc, 3000); })
        .then(function () {
          if (self.pc !== pc) { return; }
          sent = true;
          self.send({type: "answer", ring: ring.ring, sdp: pc.localDescription.sdp});
        });
    }, function () {
      self.send({type: "decline", ring: ring.ring});
      self.drop();
      self.set("ready", self.t("no_microphone"));
    }).catch(function (error) {
      self.send({type: "decline", ring: ring.ring});
      self.drop();
      self.set("ready", self.t("error") + ": " + error);
    });
  };

  // Resolve once ICE gathering is complete, or after `ms` (the rest trickles).
  function gathered(pc, ms) {
    return new Promise(function (resolve) {
      if (pc.iceGatheringState === "complete") { resolve(); return; }
      var timer = setTimeout(resolve, ms);
      pc.addEventListener("icegatheringstatechange", function () {
        if (pc.iceGatheringState === "complete") { clearTimeout(timer); resolve(); }
      });
    });
  }

  Softphone.prototype.decline = function () {
    if (!this.ring) { return; }
    this.send({type: "decline", ring: this.ring.ring});
    this.drop();
    this.set("ready", "");
  };

  Softphone.prototype.hangup = function () {
    if (!this.ring) { return; }
    this.send({type: "hangup", ring: this.ring.ring});
    this.drop();
    this.set("ready", this.t("ended"));
  };

  Softphone.prototype.toggleMute = function () {
    // The track stays and sends silence: the server ends a call whose browser sends nothing.
    this.muted = !this.muted;
    var enabled = !this.muted;
    if (this.microphone) {
      this.microphone.getAudioTracks().forEach(function (t) { t.enabled = enabled; });
    }
    this.update();
  };

  // Ask the server to hold the call or take it off hold; the "held" answer flips the button.
  Softphone.prototype.toggleHold = function () {
    if (!this.ring || this.state !== "in_call" || this.holdPending) { return; }
    this.holdPending = true;
    this.note = "";
    this.send({type: this.held ? "unhold" : "hold", call: this.ring.call});
    this.update();
  };

  Softphone.prototype.dtmf = function (digits) {
    if (this.ring && this.state === "in_call") { this.send({type: "dtmf", digits: digits}); }
  };

  // Forget the call on this device: peer connection, microphone, remote audio.
  Softphone.prototype.drop = function () {
    if (this.pc) { this.pc.close(); this.pc = null; }
    if (this.microphone) {
      this.microphone.getTracks().forEach(function (t) { t.stop(); });
      this.microphone = null;
    }
    this.audio.srcObject = null;
    this.ring = null;
    this.muted = false;
    this.held = false;
    this.holdPending = false;
  };

  // Statistics of the call's peer connection (webrtc-stats), for a device check or a test.
  Softphone.prototype.stats = function () {
    if (!this.pc) { return Promise.resolve([]); }
    return this.pc.getStats().then(function (report) {
      var out = [];
      report.forEach(function (s) { out.push(s); });
      return out;
    });
  };

  // Stop for good: close the socket and any call (the page is leaving the widget).
  Softphone.prototype.destroy = function () {
    this.stopped = true;
    if (!this.root) { return; }
    this.drop();
    if (this.socket) { this.socket.close(); this.socket = null; }
  };

  function mount(element, options) {
    if (element.sipSoftphone) { return element.sipSoftphone; }
    element.sipSoftphone = new Softphone(element, options || {});
    return element.sipSoftphone;
  }

  window.SipSoftphone = {mount: mount};

  function mountAll() {
    var nodes = document.querySelectorAll("[data-softphone]");
    Array.prototype.forEach.call(nodes, function (node) {
      var texts = {};
      try { texts = JSON.parse(node.getAttribute("data-texts") || "{}"); } catch (e) { texts = {}; }
      mount(node, {url: node.getAttribute("data-url") || undefined,
                   me: node.getAttribute("data-me") || undefined, texts: texts});
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", mountAll);
  } else {
    mountAll();
  }
})();
