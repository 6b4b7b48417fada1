// The client card (manual §5.2.2, §6.1.1) as a component any page can mount:
//   window.SipCard.mount(element, contactId, {onSaved: function (card) {}, finishWrapUp: false,
//                                              texts: {...}, operatorId: 5})
// Tabs «Главная» (fields, Статус, Операторы, «Сохранить»), «Скрипт разговора», «Задачи»,
// «Комментарии», «Показать звонки»; «Местное время» and «Позвонить» (click-to-call). Texts
// come from options.texts or the page's <script type="application/json" id="sipcard-texts">
// (templates/card/_texts.html). Every action is an API call (/api/v1/contacts/{id}/…); an
// error the API names a field of is shown beside that field. No inline handlers or styles.
(function () {
  "use strict";
  var FIELDS = [["full_name", "full_name"], ["phone", "phone", true], ["position", "position"],
    ["email", "email"], ["city", "city"], ["birth_date", "birth_date"], ["address", "address"],
    ["region", "region", true], ["description", "description"]];
  var pageTexts = null;
  var me = null;

  function csrf() {
    if (window.sipspeak && window.sipspeak.csrf) { return window.sipspeak.csrf; }
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  function api(method, url, body) {
    var init = {method: method, credentials: "same-origin", headers: {"X-CSRF-Token": csrf()}};
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return fetch(url, init).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        return {ok: response.ok, status: response.status, data: data};
      });
    });
  }

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }

  function stamp(ms) {
    if (ms === null || ms === undefined) { return ""; }
    var d = new Date(ms), two = function (n) { return (n < 10 ? "0" : "") + n; };
    return two(d.getDate()) + "-" + two(d.getMonth() + 1) + "-" + d.getFullYear() + " " +
      two(d.getHours()) + ":" + two(d.getMinutes());
  }

  function Card(root, contactId, options) {
    this.root = root;
    this.id = contactId;
    this.options = options || {};
    this.tab = "main";
    this.base = "/api/v1/contacts/" + contactId;
  }

  Card.prototype.t = function (key) {
    if (this.options.texts) { return this.options.texts[key] || key; }
    if (pageTexts === null) {
      var blob = document.getElementById("sipcard-texts");
      pageTexts = blob ? JSON.parse(blob.textContent) : {};
    }
    return pageTexts[key] || key;
  };

  Card.prototype.load = function () {
    var self = this;
    self.root.textContent = self.t("loading");
    return api("GET", self.base + "/card").then(function (r) {
      if (!r.ok) {
        self.root.textContent = "";
        self.root.appendChild(el("p", {"class": "error", role: "alert"},
          (r.data.error && r.data.error.message) || self.t("failed")));
        return;
      }
      self.render(r.data);
    });
  };

  Card.prototype.render = function (card) {
    this.card = card;
    var root = this.root, self = this;
    root.textContent = "";
    var box = el("div", {"class": "sipcard", "data-card": card.contact_id});
    var head = el("div", {"class": "sipcard-head"});
    var call = el("button", {type: "button", "class": "sipcard-call"}, this.t("call"));
    call.addEventListener("click", function () { self.call(call); });
    head.appendChild(call);
    if (card.local_time) {
      head.appendChild(el("span", {"class": "sipcard-time"},
        this.t("local_time") + ": " + card.local_time));
    }
    head.appendChild(el("span", {"class": "sipcard-note", "data-error-for": "call"}));
    head.appendChild(el("span", {"class": "muted sipcard-project"}, card.project_name));
    box.appendChild(head);
    var tabs = el("div", {"class": "sipcard-tabs", role: "tablist"});
    var panes = el("div", {"class": "sipcard-panes"});
    [["main", this.main()], ["script", this.script()], ["tasks", this.tasks()],
      ["comments", this.comments()], ["email", this.email()], ["sms", this.sms()],
      ["calls", this.calls()]].forEach(function (pair) {
      var button = el("button", {type: "button", role: "tab", "data-tab": pair[0]},
        self.t(pair[0]));
      button.addEventListener("click", function () { self.show(pair[0]); });
      tabs.appendChild(button);
      pair[1].setAttribute("data-pane", pair[0]);
      panes.appendChild(pair[1]);
    });
    box.appendChild(tabs);
    box.appendChild(panes);
    root.appendChild(box);
    this.show(this.tab);
  };

  Card.prototype.show = function (tab) {
    this.tab = tab;
    this.root.querySelectorAll("[data-tab]").forEach(function (b) {
      b.setAttribute("aria-selected", b.getAttribute("data-tab") === tab ? "true" : "false");
    });
    this.root.querySelectorAll("[data-pane]").forEach(function (p) {
      p.hidden = p.getAttribute("data-pane") !== tab;
    });
  };

  // A labelled input with the place its error goes.
  Card.prototype.field = function (form, name, label, value, readOnly, kind) {
    var wrap = el("label", {"class": "sipcard-field"});
    wrap.appendChild(el("span", {}, label));
    var input = el(kind === "textarea" ? "textarea" : "input", {"data-field": name});
    if (kind !== "textarea") { input.type = "text"; }
    input.value = value || "";
    if (readOnly) { input.readOnly = true; input.setAttribute("data-readonly", "1"); }
    if (name === "birth_date") { input.placeholder = this.t("date_hint"); }
    wrap.appendChild(input);
    wrap.appendChild(el("span", {"class": "sipcard-error", "data-error-for": name}));
    form.appendChild(wrap);
    return input;
  };

  Card.prototype.select = function (form, name, label, choices, current, none) {
    var wrap = el("label", {"class": "sipcard-field"});
    wrap.appendChild(el("span", {}, label));
    var select = el("select", {"data-field": name});
    select.appendChild(el("option", {value: ""}, none));
    choices.forEach(function (c) {
      var option = el("option", {value: c.id}, c.name);
      if (c.id === current) { option.selected = true; }
      select.appendChild(option);
    });
    wrap.appendChild(select);
    wrap.appendChild(el("span", {"class": "sipcard-error", "data-error-for": name}));
    form.appendChild(wrap);
    return select;
  };

  Card.prototype.main = function () {
    var card = this.card, self = this;
    var form = el("form", {"class": "sipcard-form", novalidate: "novalidate"});
    FIELDS.forEach(function (f) {
      self.field(form, f[0], self.t("field_" + f[0]), card.fields[f[0]], f[2],
        f[0] === "description" ? "textarea" : "input");
    });
    this.field(form, "tags", this.t("tags"), card.tags.join(", "));
    this.field(form, "robot_status", this.t("robot_status"), card.robot_status, true);
    card.custom.forEach(function (c) {
      self.field(form, "custom:" + c.name, c.name, c.value);
    });
    this.select(form, "status_id", this.t("status"), card.statuses, card.status_id,
      this.t("no_status"));
    this.select(form, "operator_id", this.t("operator"), card.operators, card.operator_id,
      this.t("no_operator"));
    var actions = el("div", {"class": "sipcard-actions"});
    actions.appendChild(el("button", {type: "submit", "class": "sipcard-save"}, this.t("save")));
    var lead = el("button", {type: "button", "class": "sipcard-lead"}, this.t("send_lead"));
    lead.addEventListener("click", function () { self.sendLead(form, lead); });
    actions.appendChild(lead);
    actions.appendChild(el("span", {"class": "sipcard-note", "data-error-for": ""}));
    form.appendChild(actions);
    form.addEventListener("submit", function (event) { event.preventDefault(); self.save(form); });
    return form;
  };

  Card.prototype.errors = function (scope, r) {
    scope.querySelectorAll("[data-error-for]").forEach(function (s) { s.textContent = ""; });
    scope.querySelectorAll(".invalid").forEach(function (i) { i.classList.remove("invalid"); });
    if (r.ok) { return false; }
    var error = r.data.error || {}, field = error.field || "";
    var spot = null;
    scope.querySelectorAll("[data-error-for]").forEach(function (s) {
      if (s.getAttribute("data-error-for") === field) { spot = s; }
    });
    if (spot === null) { spot = scope.querySelector('[data-error-for=""]'); }
    scope.querySelectorAll("[data-field]").forEach(function (i) {
      if (i.getAttribute("data-field") === field) { i.classList.add("invalid"); }
    });
    if (spot) { spot.textContent = error.message || this.t("failed"); spot.classList.add("error"); }
    return true;
  };

  Card.prototype.save = function (form) {
    var self = this, body = {custom: {}};
    form.querySelectorAll("[data-field]").forEach(function (input) {
      var name = input.getAttribute("data-field");
      if (input.getAttribute("data-readonly")) { return; }
      if (name.indexOf("custom:") === 0) { body.custom[name.slice(7)] = input.value; return; }
      if (name === "status_id" || name === "operator_id") {
        body[name] = input.value ? Number(input.value) : null;
        return;
      }
      body[name] = input.value;
    });
    if (this.options.finishWrapUp) { body.finish_wrap_up = true; }
    var button = form.querySelector(".sipcard-save");
    button.disabled = true;
    api("PATCH", this.base + "/card", body).then(function (r) {
      button.disabled = false;
      if (self.errors(form, r)) { return; }
      self.render(r.data);
      var note = self.root.querySelector('[data-pane="main"] [data-error-for=""]');
      note.textContent = self.t("saved");
      note.classList.remove("error");
      if (self.options.onSaved) { self.options.onSaved(r.data); }
    });
  };

  // «Отправить заявку»: the card as a lead for the project's CRM (delivered by the server).
  Card.prototype.sendLead = function (form, button) {
    var self = this;
    button.disabled = true;
    api("POST", this.base + "/lead").then(function (r) {
      button.disabled = false;
      if (self.errors(form, r)) { return; }
      var note = form.querySelector('[data-error-for=""]');
      note.textContent = self.t("lead_queued");
      note.classList.remove("error");
    });
  };

  Card.prototype.script = function () {
    var pane = el("div", {"class": "sipcard-script"});
    if (this.card.script_html) {
      pane.innerHTML = this.card.script_html;  // sanitised by the server (web/sanitize.py)
    } else {
      pane.appendChild(el("p", {"class": "muted"}, this.t("no_script")));
    }
    return pane;
  };

  Card.prototype.tasks = function () {
    var self = this, pane = el("div", {"class": "sipcard-list"});
    var form = el("form", {"class": "sipcard-add", novalidate: "novalidate"});
    var auto = el("input", {type: "checkbox", "data-field": "auto_call"});
    var check = el("label", {"class": "check"});
    check.appendChild(auto);
    check.appendChild(document.createTextNode(" " + this.t("auto_call")));
    form.appendChild(check);
    var text = this.field(form, "text", this.t("task_text"), "");
    var dueWrap = el("label", {"class": "sipcard-field"});
    dueWrap.appendChild(el("span", {}, this.t("due_at")));
    var due = el("input", {type: "datetime-local", "data-field": "due_at"});
    dueWrap.appendChild(due);
    dueWrap.appendChild(el("span", {"class": "sipcard-error", "data-error-for": "due_at"}));
    form.appendChild(dueWrap);
    var who = this.select(form, "operator_id", this.t("operator"), this.card.operators, null,
      "—");
    form.appendChild(el("button", {type: "submit"}, this.t("add")));
    form.appendChild(el("span", {"class": "sipcard-note", "data-error-for": ""}));
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var body = {text: text.value, auto_call: auto.checked,
        due_at: due.value ? new Date(due.value).getTime() : null};
      if (who.value) { body.operator_id = Number(who.value); }
      api("POST", self.base + "/tasks", body).then(function (r) {
        if (self.errors(form, r)) { return; }
        self.card.tasks = r.data.tasks;
        self.render(self.card);
      });
    });
    pane.appendChild(form);
    var list = el("ul", {"class": "sipcard-items", "data-list": "tasks"});
    this.card.tasks.forEach(function (task) {
      var item = el("li", {"data-task": task.id});
      item.appendChild(el("strong", {}, stamp(task.due_at)));
      item.appendChild(document.createTextNode(" " + task.text + " "));
      if (task.auto_call) { item.appendChild(el("span", {"class": "muted"}, "☎ ")); }
      if (task.operator_name) { item.appendChild(el("span", {"class": "muted"}, task.operator_name + " ")); }
      if (task.done_at) {
        item.appendChild(el("span", {"class": "muted"}, self.t("done") + " " + stamp(task.done_at)));
      } else {
        var done = el("button", {type: "button", "class": "small secondary"}, self.t("mark_done"));
        done.addEventListener("click", function () {
          api("POST", self.base + "/tasks/" + task.id + "/done").then(function (r) {
            if (r.ok) { self.card.tasks = r.data.tasks; self.render(self.card); }
          });
        });
        item.appendChild(done);
      }
      list.appendChild(item);
    });
    if (!this.card.tasks.length) { list.appendChild(el("li", {"class": "muted"}, this.t("no_tasks"))); }
    pane.appendChild(list);
    return pane;
  };

  Card.prototype.comments = function () {
    var self = this, pane = el("div", {"class": "sipcard-list"});
    var form = el("form", {"class": "sipcard-add", novalidate: "novalidate"});
    var text = this.field(form, "text", this.t("comment_text"), "", false, "textarea");
    form.appendChild(el("button", {type: "submit"}, this.t("add")));
    form.appendChild(el("span", {"class": "sipcard-note", "data-error-for": ""}));
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      api("POST", self.base + "/comments", {text: text.value}).then(function (r) {
        if (self.errors(form, r)) { return; }
        self.card.comments = r.data.comments;
        self.render(self.card);
      });
    });
    pane.appendChild(form);
    var list = el("ul", {"class": "sipcard-items", "data-list": "comments"});
    this.card.comments.forEach(function (c) {
      var item = el("li", {"data-comment": c.id});
      item.appendChild(el("span", {"class": "muted"}, stamp(c.created_at) + " " + c.author));
      item.appendChild(el("p", {}, c.text));
      list.appendChild(item);
    });
    if (!this.card.comments.length) {
      list.appendChild(el("li", {"class": "muted"}, this.t("no_comments")));
    }
    pane.appendChild(list);
    return pane;
  };

  // «E-mail»: the project's template filled in by the server, edited here, then sent.
  Card.prototype.email = function () {
    var self = this, pane = el("div", {"class": "sipcard-list"});
    var form = el("form", {"class": "sipcard-mail", novalidate: "novalidate"});
    var to = this.field(form, "email", this.t("mail_to"), this.card.fields.email || "", true);
    var subject = this.field(form, "subject", this.t("mail_subject"), "");
    var body = this.field(form, "body", this.t("mail_body"), "", false, "textarea");
    var send = el("button", {type: "submit", "class": "sipcard-mail-send"}, this.t("mail_send"));
    form.appendChild(send);
    form.appendChild(el("span", {"class": "sipcard-note", "data-error-for": ""}));
    api("GET", this.base + "/email").then(function (r) {
      if (self.errors(form, r)) { return; }
      to.value = r.data.to;
      subject.value = r.data.subject;
      body.value = r.data.body;
      if (!r.data.available) {
        send.disabled = true;
        form.querySelector('[data-error-for=""]').textContent = self.t("mail_off");
      }
    });
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      send.disabled = true;
      api("POST", self.base + "/email", {subject: subject.value, body: body.value})
        .then(function (r) {
          send.disabled = false;
          if (self.errors(form, r)) { return; }
          var note = form.querySelector('[data-error-for=""]');
          note.textContent = self.t("mail_sent");
          note.classList.remove("error");
        });
    });
    pane.appendChild(form);
    return pane;
  };

  // «SMS»: the project's template filled in by the server, edited here, then sent.
  Card.prototype.sms = function () {
    var self = this, pane = el("div", {"class": "sipcard-list"});
    var form = el("form", {"class": "sipcard-sms", novalidate: "novalidate"});
    var to = this.field(form, "to", this.t("sms_to"), this.card.phone || "", true);
    var text = this.field(form, "text", this.t("sms_text"), "", false, "textarea");
    var send = el("button", {type: "submit", "class": "sipcard-sms-send"}, this.t("sms_send"));
    form.appendChild(send);
    form.appendChild(el("span", {"class": "sipcard-note", "data-error-for": ""}));
    api("GET", this.base + "/sms").then(function (r) {
      if (self.errors(form, r)) { return; }
      to.value = r.data.to;
      text.value = r.data.text;
      if (!r.data.available) {
        send.disabled = true;
        form.querySelector('[data-error-for=""]').textContent = self.t("sms_off");
      }
    });
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      send.disabled = true;
      api("POST", self.base + "/sms", {text: text.value}).then(function (r) {
        send.disabled = false;
        if (self.errors(form, r)) { return; }
        var note = form.querySelector('[data-error-for=""]');
        note.textContent = self.t("sms_sent");
        note.classList.remove("error");
      });
    });
    pane.appendChild(form);
    return pane;
  };

  Card.prototype.calls = function () {
    var self = this, pane = el("div", {"class": "sipcard-list"});
    pane.appendChild(el("p", {"class": "muted"}, this.t("calls_hint")));
    var button = el("button", {type: "button", "class": "secondary"}, this.t("calls"));
    var table = el("table", {"class": "list", "data-list": "calls"});
    button.addEventListener("click", function () {
      api("GET", self.base + "/calls").then(function (r) {
        table.textContent = "";
        if (!r.ok) { return; }
        var head = table.createTHead().insertRow();
        ["date", "direction", "field_phone", "duration", "result", "operator", "project",
          "recording"].forEach(function (k) { head.appendChild(el("th", {}, self.t(k))); });
        var body = table.createTBody();
        r.data.items.forEach(function (c) {
          var row = body.insertRow();
          [c.started, self.t(c.direction), c.phone, Math.round(c.duration_ms / 1000),
            c.client_status || c.result, c.operator_name, c.project_name].forEach(function (v) {
            row.appendChild(el("td", {}, v));
          });
          var listen = row.insertCell();
          if (c.recording_url) {
            listen.appendChild(el("audio", {controls: "controls", preload: "none",
              src: c.recording_url}));
          }
        });
        if (!r.data.items.length) {
          body.insertRow().appendChild(el("td", {colspan: 8, "class": "muted"}, self.t("no_calls")));
        }
      });
    });
    pane.appendChild(button);
    pane.appendChild(table);
    return pane;
  };

  // «Позвонить»: click-to-call (POST /api/v1/calls) rings the signed-in user's phone first.
  Card.prototype.call = function (button) {
    var self = this, note = this.root.querySelector('[data-error-for="call"]');
    var who = this.options.operatorId ? Promise.resolve(this.options.operatorId) :
      (me ? Promise.resolve(me) : api("GET", "/api/v1/me").then(function (r) {
        me = r.data.id; return me;
      }));
    button.disabled = true;
    who.then(function (operatorId) {
      return api("POST", "/api/v1/calls", {operator_id: operatorId, contact_id: self.id});
    }).then(function (r) {
      button.disabled = false;
      note.classList.toggle("error", !r.ok);
      note.textContent = r.ok ? self.t("calling") :
        ((r.data.error && r.data.error.message) || self.t("failed"));
    });
  };

  window.SipCard = {
    mount: function (element, contactId, options) {
      var card = new Card(element, contactId, options);
      card.load();
      return card;
    }
  };
})();
