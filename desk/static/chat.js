/* Relend in-app chat (sandbox). Plain JS, no dependencies.
 *
 * Delivery guarantees on the client side:
 *  - the token, the conversation's messages (bounded cache), the last message id seen and
 *    every outgoing message not yet acknowledged live in localStorage;
 *  - on every (re)connect the page sends {"type":"hello","after":lastId} and then resends the
 *    unacknowledged messages with their original client_id (the desk dedupes by client_id);
 *  - messages are keyed by their server id, so a replay never shows one twice;
 *  - a message the desk refuses as "rate_limited", or could not handle ("unavailable"), stays
 *    in the outbox and is resent after the retry_after the desk gave; any other refusal that
 *    names the message (its client_id) is final: the message leaves the outbox and is shown as
 *    not sent, with the reason, so it is never resent (nor holds up the ones after it).
 *
 * Privacy on a shared device: every key this page writes starts with "relend.chat." and all of
 * them (session token, outbox, cached history, locale) are removed from localStorage and
 * sessionStorage when the borrower switches user or the desk refuses the token (close 4401).
 *
 * The token travels in the WebSocket subprotocol list ("relend.v1", "auth.<token>"), never in
 * the URL. The page runs under a strict CSP: no inline scripts or style attributes here.
 *
 * Every word on the page is a text of the catalog (page.chat.* in texts/<lang>.yml), loaded
 * by common.js before the page starts; t("key") is the text in the conversation's language.
 *
 * The handoff state (the desk's "handoff" frames, and the "handoff" of every "history" frame,
 * which answers each hello: a reloaded page starts from where the handoff stands): "bot",
 * "waiting" (with the place in the queue, and the expected wait only when the desk can
 * estimate it: counted down here between the desk's frames, refreshed by each one, gone when
 * its time is up) or "agent" (with the agent's name). The header says who answers, a bar under it
 * says the borrower waits for a person. A person joining, or leaving with the assistant back,
 * is a system message the desk stores: it comes with the history, on any device.
 *
 * For tests (and anyone watching the page): #message-list carries data-turn-sent, the id of
 * the last message sent from this page load that the desk stored, and data-turn-done, the
 * highest message id whose turn the desk has finished (its "turn_done" frame).
 */
(function () {
  "use strict";

  var KEY_PREFIX = "relend.chat.";               // every storage key this page writes
  var SESSION_KEY = KEY_PREFIX + "session";
  var LOCALE_KEY = KEY_PREFIX + "locale";
  var STATE_PREFIX = KEY_PREFIX + "state.";
  var MAX_CACHED = 300;
  var MAX_BACKOFF_MS = 15000;
  var MAX_FAILED = 20;                           // refused messages kept on the page
  // refusals that the same text would get again: it can only be edited
  var FINAL_FOR_TEXT = { message_too_long: true, empty_message: true };

  var $ = Relend.$, el = Relend.el, fmt = Relend.fmt, load = Relend.load, save = Relend.save;

  // ---------- small helpers ----------
  function newClientId() {
    var rand = "";
    var bytes = new Uint8Array(8);
    (window.crypto || window.msCrypto).getRandomValues(bytes);
    for (var i = 0; i < bytes.length; i++) rand += bytes[i].toString(36);
    return ("m" + Date.now().toString(36) + "-" + rand).slice(0, 64);
  }
  function timeOf(iso) {
    var d = iso ? new Date(iso) : new Date();
    if (isNaN(d.getTime())) return "";
    return String(d.getHours()).padStart(2, "0") + ":" + String(d.getMinutes()).padStart(2, "0");
  }
  /** "李娜 Li Na" -> "李娜" in Chinese, "Li Na" in English. */
  function agentDisplayName(name, lang) {
    name = String(name || "").trim();
    var m = name.match(/^([\u3400-\u9fff·]+)\s+([A-Za-z].*)$/);
    if (!m) return name;
    return lang === "en" ? m[2] : m[1];
  }

  // ---------- state ----------
  var session = load(SESSION_KEY, null);       // {token, borrower_id, name, locale}
  var chosenLocale = load(LOCALE_KEY, null) || (session && session.locale) || "zh-CN";
  var state = null;                            // per borrower, see freshState()
  var socket = null;
  var socketReady = false;
  var attempts = 0;
  var reconnectTimer = null;
  var countdownTimer = null;
  var typingTimer = null;
  var stopped = true;
  var renderedIds = {};                        // message id -> row element
  var pendingEls = {};                         // client_id -> row element
  var holdUntil = 0;                           // rate limited: send nothing before this (ms)
  var holdTimer = null;
  var helloDropped = false;                    // a "hello" refused as rate limited: ask again

  var turnSent = 0;                            // the last message sent from this page load
  var turnDone = 0;                            // the last message whose turn the desk finished
  var sentHere = {};                           // client_ids sent from this page load
  var syncWaiters = [];                        // relendChat.sync() calls waiting for a history
  var ESTIMATE_TICK_MS = 15000;                // how often the waiting bar counts the estimate down
  var estimateTimer = null;

  function lang() { return Relend.languageFor(session ? session.locale : chosenLocale); }
  function t(key) { return Relend.text(lang(), key); }
  function list(key) { return Relend.list(lang(), key); }

  function freshState() {
    return { conversation_id: null, lastId: 0, messages: [], unacked: [], labels: {},
             handoff: null, failed: [] };
  }
  function stateKey() { return STATE_PREFIX + session.borrower_id; }
  function loadState() {
    var s = load(stateKey(), null);
    if (!s || typeof s !== "object" || !Array.isArray(s.messages)) s = freshState();
    s.unacked = Array.isArray(s.unacked) ? s.unacked : [];
    s.labels = s.labels && typeof s.labels === "object" ? s.labels : {};
    s.lastId = typeof s.lastId === "number" ? s.lastId : 0;
    s.handoff = s.handoff && typeof s.handoff === "object" ? s.handoff : null;
    delete s.notices;  // handoff lines kept here before the desk stored them (issue 12)
    s.failed = Array.isArray(s.failed) ? s.failed.slice(-MAX_FAILED) : [];
    return s;
  }
  function persist() {
    if (!session || !state) return;
    if (state.messages.length > MAX_CACHED) state.messages = state.messages.slice(-MAX_CACHED);
    var keep = {};
    state.unacked.forEach(function (u) { if (u.label) keep[u.client_id] = u.label; });
    state.messages.forEach(function (m) {
      if (m.client_id && state.labels[m.client_id]) keep[m.client_id] = state.labels[m.client_id];
    });
    state.labels = keep;
    save(stateKey(), state);
  }

  // ---------- i18n ----------
  function applyText() {
    Relend.applyTexts(lang());
    document.querySelectorAll("[data-locale]").forEach(function (b) {
      b.classList.toggle("active", b.getAttribute("data-locale") === chosenLocale);
      b.setAttribute("aria-pressed", b.getAttribute("data-locale") === chosenLocale ? "true" : "false");
    });
  }

  // ---------- picker ----------
  var borrowers = null;

  function showPicker(error) {
    stopSocket();
    $("chat").hidden = true;
    $("picker").hidden = false;
    applyText();
    var box = $("picker-error");
    box.hidden = !error;
    box.textContent = error || "";
    if (borrowers) renderBorrowers(); else fetchBorrowers();
  }

  function fetchBorrowers() {
    var list = $("borrower-list");
    list.innerHTML = "";
    for (var i = 0; i < 5; i++) list.appendChild(el("li", null, [el("div", { "class": "skeleton" })]));
    fetch("/api/demo/borrowers").then(function (r) {
      if (!r.ok) throw new Error("HTTP " + r.status);
      return r.json();
    }).then(function (body) {
      borrowers = body.borrowers || [];
      renderBorrowers();
    }).catch(function () {
      list.innerHTML = "";
      var box = $("picker-error");
      box.hidden = false;
      box.textContent = t("load_failed");
    });
  }

  function renderBorrowers() {
    var list = $("borrower-list");
    list.innerHTML = "";
    list.setAttribute("aria-busy", "false");
    borrowers.forEach(function (b) {
      var initial = (b.name || b.borrower_id).trim().charAt(0).toUpperCase();
      var btn = el("button", {
        type: "button", "class": "borrower", testid: "borrower-" + b.borrower_id,
        "data-borrower-id": b.borrower_id,
        onclick: function () { login(b); }
      }, [
        el("span", { "class": "initial", "aria-hidden": "true", text: initial }),
        el("span", { "class": "meta" }, [
          el("span", { "class": "name" }, [
            el("span", { text: b.name }), el("span", { "class": "bid", text: b.borrower_id })
          ]),
          // in the page's language when the catalog knows this demo borrower
          el("span", { "class": "situation", text: Relend.has(lang(), "demo." + b.borrower_id)
            ? t("demo." + b.borrower_id) : b.situation })
        ]),
        el("span", { "class": "chev", "aria-hidden": "true", text: "›" })
      ]);
      list.appendChild(el("li", null, [btn]));
    });
  }

  function login(borrower) {
    var locale = chosenLocale;
    fetch("/api/demo/login", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ borrower_id: borrower.borrower_id, locale: locale })
    }).then(function (r) {
      if (!r.ok) throw new Error("HTTP " + r.status);
      return r.json();
    }).then(function (body) {
      session = { token: body.token, borrower_id: borrower.borrower_id, name: borrower.name, locale: locale };
      save(SESSION_KEY, session);
      startChat();
    }).catch(function () { showPicker(t("login_failed")); });
  }

  /** Leave the conversation and leave nothing of it behind on this device: the socket, the
   *  timers, the page's DOM and every key the page stored. `message` is shown on the picker. */
  function endSession(message) {
    stopSocket();
    clearTimeout(holdTimer);
    holdTimer = null;
    holdUntil = 0;
    helloDropped = false;
    setTyping(false);
    if (session) chosenLocale = session.locale || chosenLocale;  // the picker keeps its language
    session = null;
    state = null;
    renderedIds = {};
    pendingEls = {};
    Relend.wipe(KEY_PREFIX);
    $("message-list").innerHTML = "";
    $("suggestions").innerHTML = "";
    $("who").textContent = "";
    $("who").removeAttribute("title");
    $("handoff-bar").hidden = true;
    $("welcome-text").textContent = "";
    $("input").value = "";
    showBanner(null);
    showPicker(message || null);
  }

  // ---------- chat ----------
  function startChat() {
    $("picker").hidden = true;
    $("chat").hidden = false;
    applyText();
    $("who").textContent = session.name || session.borrower_id;
    $("welcome-text").textContent = fmt(t("welcome"), {
      greeting: session.name ? fmt(t("greeting_named"), { name: session.name }) : t("greeting")
    });
    $("who").title = session.borrower_id;
    state = loadState();
    renderAll();
    renderSuggestions();
    stopped = false;
    attempts = 0;
    connect();
    $("input").focus();
  }

  function renderAll() {
    $("message-list").innerHTML = "";
    renderedIds = {};
    pendingEls = {};
    state.messages.forEach(function (m) { insertRow(m); });
    state.failed.forEach(function (u) { placeFailed(u); });
    state.unacked.forEach(function (u) { renderPending(u); });
    refreshQuickReplies();
    refreshStatus();
    scrollDown(true);
  }

  function buttonTitle(text) {
    // a quick reply sends its payload; show the button's title instead of "/affirm"
    for (var i = state.messages.length - 1; i >= 0; i--) {
      var buttons = state.messages[i].buttons || [];
      for (var j = 0; j < buttons.length; j++) if (buttons[j].payload === text) return buttons[j].title;
    }
    return null;
  }

  function displayText(m) {
    if (m.sender === "borrower") {
      if (m.client_id && state.labels[m.client_id]) return state.labels[m.client_id];
      if (m.text && m.text.charAt(0) === "/") return buttonTitle(m.text) || m.text;
    }
    return m.text;
  }

  function buildRow(m) {
    if (m.sender === "system") {
      return el("div", { "class": "system-row", testid: "message-system", "data-id": m.id }, [
        el("div", { "class": "system", text: m.text })
      ]);
    }
    var row = el("div", {
      "class": "msg-row from-" + (m.sender === "borrower" ? "borrower" : m.sender === "agent" ? "agent" : "bot"),
      testid: "message-" + m.sender, "data-id": m.id, "data-sender": m.sender
    });
    var body = el("div", { "class": "msg-body" });
    if (m.sender === "agent") {
      var name = agentDisplayName(m.agent_name, lang());
      row.appendChild(el("div", { "class": "avatar agent", "aria-hidden": "true", text: (name || t("agent_initial")).charAt(0) }));
      body.appendChild(el("div", { "class": "sender-label", testid: "agent-label" }, [
        el("span", { "class": "tag", text: t("agent_tag") }),
        document.createTextNode(name || t("agent"))  // the tag already says "a person"
      ]));
    } else if (m.sender === "bot") {
      row.appendChild(el("div", { "class": "avatar bot", "aria-hidden": "true", text: t("brand_mark") }));
      body.appendChild(el("div", { "class": "sender-label", text: t("bot") }));
    }
    // ids (an appeal's, a loan's) are never broken across lines
    body.appendChild(el("div", { "class": "bubble", testid: "bubble" }, Relend.withIds(displayText(m))));
    // a bot reply's picture of the borrower's situation, in the reply's own language (the
    // text says the same in words)
    var picture = m.sender === "bot" && m.attachment ? Relend.situationView(m.attachment) : null;
    if (picture) {
      row.classList.add("has-situation");
      body.appendChild(picture);
    }
    if (m.sender === "bot" && m.buttons && m.buttons.length) {
      var box = el("div", { "class": "quick-replies", testid: "quick-replies", "data-for": m.id });
      m.buttons.forEach(function (b) {
        box.appendChild(el("button", {
          type: "button", "class": "quick-reply", testid: "quick-reply",
          "data-payload": b.payload, text: b.title,
          onclick: function (ev) {
            if (ev.currentTarget.disabled) return;
            sendText(b.payload, b.title);
          }
        }));
      });
      body.appendChild(box);
    }
    body.appendChild(el("div", { "class": "msg-meta" }, [el("span", { text: timeOf(m.at) })]));
    row.appendChild(body);
    return row;
  }

  /** Put a server message in id order; returns false when it was already shown. */
  function insertRow(m) {
    if (renderedIds[m.id]) return false;
    var row = buildRow(m);
    var list = $("message-list");
    var before = null;
    var children = list.children;
    for (var i = 0; i < children.length; i++) {
      var node = children[i];
      if (isOutbox(node)) { before = node; break; }
      if (rowKey(node) > m.id) { before = node; break; }
    }
    list.insertBefore(row, before);
    renderedIds[m.id] = row;
    return true;
  }

  /** Where a row sorts: a message by its id, a failed message just after the one it followed. */
  function rowKey(node) {
    var after = node.getAttribute("data-after");
    return after !== null ? Number(after) + 0.5 : Number(node.getAttribute("data-id"));
  }

  // ---------- the handoff ----------
  function handoffState() { return state && state.handoff ? state.handoff.state : "bot"; }

  /** The desk says where the handoff stands (the header and the waiting bar show it). A person
   *  joining or leaving is a system message the desk stores in the conversation: replayed with
   *  the history on any device, so nothing of it is kept here. */
  function setHandoff(h) {
    if (!h || typeof h !== "object" || ["bot", "waiting", "agent"].indexOf(h.state) < 0) return;
    var minutes = h.expected_minutes;
    var estimate = typeof minutes === "number" && minutes >= 1 ? Math.round(minutes) : null;
    state.handoff = { state: h.state, position: typeof h.position === "number" ? h.position : null,
                      agent_name: h.agent_name || null,
                      // the desk's estimate, only when it has one (never made up here), and
                      // when it came: the page counts it down from then (minutesLeft)
                      expected_minutes: estimate, estimated_at: estimate ? Date.now() : null };
    persist();
    refreshStatus();
  }

  /** The desk's estimate counted down since it came (the desk sends a fresh one whenever the
   *  queue moves, and with every history): whole minutes left, at least 1; null when there is
   *  no estimate or its time is up (the desk, too, gives no figure past it). */
  function minutesLeft(h, now) {
    if (!h || !h.expected_minutes) return null;
    var since = typeof h.estimated_at === "number" ? h.estimated_at : now;
    var left = h.expected_minutes * 60000 - Math.max(0, now - since);
    return left > 0 ? Math.max(1, Math.ceil(left / 60000)) : null;
  }

  /** The bar under the header while the borrower waits for a person. It is a live region
   *  (role=status): rewritten only when its words change, so a tick is not read out again. */
  function refreshHandoffBar() {
    var bar = $("handoff-bar");
    var h = state && state.handoff;
    var waiting = !!(h && h.state === "waiting");
    var minutes = waiting ? minutesLeft(h, Date.now()) : null;
    // the countdown runs only while there is a figure to count down
    if (minutes && !estimateTimer) estimateTimer = setInterval(refreshHandoffBar, ESTIMATE_TICK_MS);
    if (!minutes && estimateTimer) { clearInterval(estimateTimer); estimateTimer = null; }
    bar.hidden = !waiting;
    bar.setAttribute("data-state", h ? h.state : "bot");
    if (!waiting) { bar.textContent = ""; bar.removeAttribute("data-words"); return; }
    var text = h.position === 1 ? t("waiting_next")
      : h.position > 1 ? fmt(t("waiting_in_queue"), { n: h.position }) : t("waiting_note");
    var estimate = minutes ? fmt(t("waiting_estimate"), { n: minutes }) : "";
    if (bar.getAttribute("data-words") === text + "|" + estimate) return;
    bar.setAttribute("data-words", text + "|" + estimate);
    bar.textContent = text;
    if (estimate) {
      bar.appendChild(el("span", { "class": "estimate", testid: "handoff-estimate",
                                   text: estimate }));
    }
  }

  /** Why an unsent message is not sent yet, in words for the borrower (or null). */
  function pendingNote(u) {
    var code = u.error && u.error.code;
    if (!code) return null;
    if (code === "rate_limited") return t("rate_limited");
    if (code === "unavailable") return t("unavailable");
    if (code === "message_too_long") return fmt(t("too_long"), { n: u.error.limit || 2000 });
    if (code === "empty_message") return t("empty");
    return t("send_error");
  }

  function buildPending(u) {
    var note = pendingNote(u);
    var stateText = u.failed ? t("failed") : u.held ? t("waiting_to_resend") : t("sending");
    return el("div", {
      "class": "msg-row from-borrower pending" + (u.failed ? " failed" : "") + (u.held ? " held" : ""),
      testid: "message-pending", "data-client-id": u.client_id,
      "data-error": u.error && u.error.code ? u.error.code : null
    }, [el("div", { "class": "msg-body" }, [
      el("div", { "class": "bubble", testid: "bubble", text: u.label || u.text }),
      note ? el("div", { "class": "pending-note", testid: "pending-note", role: "status", text: note }) : null,
      el("div", { "class": "msg-meta" }, [
        el("span", { "class": "state" + (u.failed ? " failed" : u.held ? " held" : ""),
                     testid: "pending-state", text: stateText }),
        // a refusal the same text would meet again (too long, empty) is for editing only; a
        // button's payload is never edited
        u.failed && !FINAL_FOR_TEXT[u.error && u.error.code] ? el("button", {
          type: "button", "class": "link-btn", testid: "failed-retry", text: t("failed_retry"),
          onclick: function () { retryFailed(u); } }) : null,
        u.failed && !u.label ? el("button", {
          type: "button", "class": "link-btn", testid: "failed-edit", text: t("failed_edit"),
          onclick: function () { editFailed(u); } }) : null
      ])
    ])]);
  }

  function renderPending(u) {
    var row = buildPending(u);
    $("message-list").appendChild(row);
    pendingEls[u.client_id] = row;
  }

  /** A row of the outbox (sending or waiting to be resent): after everything the desk stored.
   *  A refused message is not: it stays where it was sent. */
  function isOutbox(node) {
    return node.classList.contains("pending") && !node.classList.contains("failed");
  }

  /** A refused message, where it was sent: after the message that was newest then. */
  function placeFailed(u) {
    var row = buildPending(u);
    var after = typeof u.after === "number" ? u.after : 0;
    row.setAttribute("data-after", String(after));
    var list = $("message-list");
    var before = null;
    for (var i = 0; i < list.children.length; i++) {
      var node = list.children[i];
      if (isOutbox(node) || rowKey(node) > after + 0.5) { before = node; break; }
    }
    list.insertBefore(row, before);
    pendingEls[u.client_id] = row;
  }

  /** Take a refused message back: off the page and out of what is stored. */
  function forgetFailed(u) {
    state.failed = state.failed.filter(function (x) { return x.client_id !== u.client_id; });
    dropPending(u.client_id);
    persist();
  }

  function retryFailed(u) {
    forgetFailed(u);
    sendText(u.text, u.label);
  }

  function editFailed(u) {
    forgetFailed(u);
    var input = $("input");
    input.value = u.text;
    autosize();
    input.focus();
  }

  /** Redraw an unsent message where it is (keeps the order of several unsent ones). */
  function refreshPending(u) {
    var old = pendingEls[u.client_id];
    if (!old || !old.parentNode) { renderPending(u); return; }
    var row = buildPending(u);
    old.parentNode.replaceChild(row, old);
    pendingEls[u.client_id] = row;
  }

  function dropPending(clientId) {
    var row = pendingEls[clientId];
    if (row && row.parentNode) row.parentNode.removeChild(row);
    delete pendingEls[clientId];
  }

  /** A message from the server (live or replayed): store once, show once. */
  function accept(m) {
    if (!m || typeof m.id !== "number") return;
    if (m.client_id) {
      noteSent(m.client_id, m.id);
      dropPending(m.client_id);
      state.unacked = state.unacked.filter(function (u) { return u.client_id !== m.client_id; });
    }
    var known = state.messages.some(function (x) { return x.id === m.id; });
    if (!known) {
      var entry = {
        id: m.id, sender: m.sender, agent_name: m.agent_name || null, text: m.text,
        buttons: m.buttons || [], client_id: m.client_id || null, at: m.at,
        attachment: m.sender === "bot" && m.attachment ? m.attachment : null
      };
      var idx = state.messages.length;
      while (idx > 0 && state.messages[idx - 1].id > m.id) idx--;
      state.messages.splice(idx, 0, entry);
      insertRow(entry);
    }
    if (m.id > state.lastId) state.lastId = m.id;
    if (m.sender === "bot" || m.sender === "agent") setTyping(false);
  }

  /** A message this page load sent is stored as `id`: its turn is one to wait for. */
  function noteSent(clientId, id) {
    if (!sentHere[clientId] || id <= turnSent) return;
    turnSent = id;
    $("message-list").setAttribute("data-turn-sent", String(turnSent));
  }

  function afterChange(forceScroll) {
    persist();
    refreshQuickReplies();
    refreshStatus();
    renderSuggestions();
    scrollDown(forceScroll);
  }

  function refreshQuickReplies() {
    var lastBorrower = 0;
    state.messages.forEach(function (m) { if (m.sender === "borrower" && m.id > lastBorrower) lastBorrower = m.id; });
    if (state.unacked.length) lastBorrower = Infinity;
    document.querySelectorAll(".quick-replies").forEach(function (box) {
      var used = Number(box.getAttribute("data-for")) < lastBorrower;
      box.querySelectorAll("button").forEach(function (b) { b.disabled = used; });
    });
  }

  function renderSuggestions() {
    var box = $("suggestions");
    box.innerHTML = "";
    var started = state.unacked.length || state.messages.some(function (m) { return m.sender === "borrower"; });
    if (started) return;
    list("suggestion").forEach(function (text) {
      box.appendChild(el("button", { type: "button", testid: "suggestion", text: text,
                                     onclick: function () { sendText(text); } }));
    });
  }

  /** The header says who answers now: the assistant, a person (by name), or that the
   *  borrower waits for one (from the desk's handoff state, never from the last message). */
  function refreshStatus() {
    var dot = $("status-dot");
    var text = $("status-text");
    var h = state && state.handoff;
    $("chat-status").setAttribute("data-state", socketReady ? handoffState() : "offline");
    refreshHandoffBar();
    if (!socketReady) {
      dot.className = "dot off";
      text.textContent = t("connecting");
      return;
    }
    if (h && h.state === "agent") {
      dot.className = "dot human";
      text.textContent = h.agent_name ? fmt(t("human_online"), { name: agentDisplayName(h.agent_name, lang()) })
        : t("human_online_anon");
    } else if (h && h.state === "waiting") {
      dot.className = "dot waiting";
      text.textContent = h.position ? fmt(t("waiting_status_position"), { n: h.position }) : t("waiting_status");
    } else {
      dot.className = "dot";
      text.textContent = t("online");
    }
  }

  // Whether the borrower is reading the newest messages, as of their last scroll: measured
  // before new content arrives, so that a long reply does not count as "scrolled up".
  var following = true;

  function onScroll() {
    var box = $("messages");
    following = box.scrollHeight - box.scrollTop - box.clientHeight < 160;
  }

  /** Bring the newest message fully into view (its top, if it is taller than the view),
   *  unless the borrower has scrolled up to read the history. */
  function scrollDown(force) {
    if (!force && !following) return;
    requestAnimationFrame(function () {
      var box = $("messages");
      var rows = $("message-list").children;
      var last = rows.length ? rows[rows.length - 1] : null;
      var bottom = box.scrollHeight - box.clientHeight;
      if (last && $("typing").hidden && last.offsetHeight > box.clientHeight) {
        var top = box.scrollTop + last.getBoundingClientRect().top - box.getBoundingClientRect().top;
        bottom = Math.min(bottom, top - 8);
      }
      box.scrollTop = bottom;
      following = true;
    });
  }

  function setTyping(on) {
    clearTimeout(typingTimer);
    $("typing").hidden = !on;
    if (on) {
      typingTimer = setTimeout(function () { $("typing").hidden = true; }, 30000);
      scrollDown(false);
    }
  }

  function showBanner(text, kind) {
    var b = $("conn-banner");
    b.hidden = !text;
    b.textContent = text || "";
    b.className = "banner" + (kind ? " " + kind : "");
  }

  // ---------- sending ----------
  function sendText(text, label) {
    text = String(text || "").trim();
    if (!text) return;
    // `after`: the newest message shown when it was sent (where it stays if it is refused)
    var u = { client_id: newClientId(), text: text, label: label || null, at: new Date().toISOString(),
              after: state.lastId };
    sentHere[u.client_id] = true;
    state.unacked.push(u);
    if (label) state.labels[u.client_id] = label;
    persist();
    renderPending(u);
    renderSuggestions();
    refreshQuickReplies();
    scrollDown(true);
    if (Date.now() < holdUntil) {
      // the desk asked us to slow down: this one waits in the outbox with the others
      u.held = true;
      u.error = { code: "rate_limited" };
      persist();
      refreshPending(u);
    } else if (socketReady) transmit(u);
    else showBanner(t("offline_queued"));
  }

  function transmit(u) {
    try {
      socket.send(JSON.stringify({ type: "message", text: u.text, client_id: u.client_id }));
    } catch (e) { /* the close handler reconnects and resends */ }
  }

  function onSubmit(ev) {
    ev.preventDefault();
    var input = $("input");
    var text = input.value.trim();
    if (!text || tooLong()) return;
    input.value = "";
    autosize();
    $("send").disabled = true;
    sendText(text);
  }

  // the longest message the desk takes (its session frame says; this until it has)
  var maxChars = 2000;

  function tooLong() { return $("input").value.trim().length > maxChars; }

  /** Fit the input to its text; a text over the desk's limit is kept whole (a paste is never
   *  cut), said so with its length, and cannot be sent until it is shortened. */
  function autosize() {
    var input = $("input");
    input.style.height = "auto";
    input.style.height = Math.min(input.scrollHeight + 2, 110) + "px";
    var over = tooLong();
    var note = $("input-limit");
    note.hidden = !over;
    note.textContent = over ? fmt(t("length_over"), { len: input.value.trim().length, n: maxChars }) : "";
    $("send").disabled = !input.value.trim() || over;
  }

  // ---------- socket ----------
  function connect() {
    clearTimeout(reconnectTimer);
    clearInterval(countdownTimer);
    if (stopped || !session) return;
    var ws;
    try {
      ws = Relend.openSocket("/ws/chat", session.token);
    } catch (e) {
      // a SyntaxError means the stored token is not even a valid subprotocol: it is unusable
      if (e && e.name === "SyntaxError") { endSession(t("session_ended")); return; }
      scheduleReconnect();
      return;
    }
    socket = ws;
    socketReady = false;
    refreshStatus();
    ws.onmessage = function (ev) {
      if (ws !== socket) return;
      var data;
      try { data = JSON.parse(ev.data); } catch (e) { return; }
      handle(data);
    };
    ws.onclose = function (ev) {
      if (ws !== socket) return;
      socket = null;
      socketReady = false;
      setTyping(false);
      refreshStatus();
      if (stopped) return;
      if (ev.code === 4401) { endSession(t("session_ended")); return; }
      scheduleReconnect();
    };
    ws.onerror = function () { /* onclose follows */ };
  }

  function scheduleReconnect() {
    clearTimeout(reconnectTimer);
    clearInterval(countdownTimer);
    var base = Math.min(MAX_BACKOFF_MS, 500 * Math.pow(2, attempts));
    var delay = Math.round(base * (0.8 + Math.random() * 0.4));
    attempts += 1;
    var until = Date.now() + delay;
    var tick = function () {
      var s = Math.max(0, Math.ceil((until - Date.now()) / 1000));
      showBanner(s >= 2 ? fmt(t("reconnect_in"), { s: s }) : t("reconnecting"));
    };
    tick();
    countdownTimer = setInterval(tick, 500);
    reconnectTimer = setTimeout(connect, delay);
  }

  function stopSocket() {
    stopped = true;
    clearTimeout(reconnectTimer);
    clearInterval(countdownTimer);
    socketReady = false;
    if (socket) {
      var s = socket;
      socket = null;
      try { s.close(1000); } catch (e) { /* already closed */ }
    }
  }

  function handle(data) {
    switch (data.type) {
      case "session":
        if (state.conversation_id && state.conversation_id !== data.conversation_id) {
          // the previous conversation was closed: start a clean page, keep unsent messages
          var unacked = state.unacked;
          var labels = state.labels;
          state = freshState();
          state.unacked = unacked;
          state.labels = labels;
          renderAll();
        }
        state.conversation_id = data.conversation_id;
        if (typeof data.max_chars === "number" && data.max_chars > 0) { maxChars = data.max_chars; autosize(); }
        persist();
        socketReady = true;
        attempts = 0;
        showBanner(null);
        socket.send(JSON.stringify({ type: "hello", after: state.lastId }));
        helloDropped = false;
        if (Date.now() >= holdUntil) flushOutbox(true);  // else the hold timer sends them
        refreshStatus();
        break;
      case "history":
        (data.messages || []).forEach(accept);
        if (data.handoff) setHandoff(data.handoff);
        afterChange(true);
        syncWaiters.splice(0).forEach(function (done) { done(); });
        break;
      case "message":
        accept(data);
        afterChange(data.sender === "borrower");
        break;
      case "ack":
        onAck(data);
        break;
      case "typing":
        setTyping(!!data.on);
        break;
      case "handoff":  // who answers now changed (or the place in the queue did)
        setHandoff(data);
        break;
      case "turn_done":  // the desk has nothing more to say to that message
        setTyping(false);
        if (typeof data.message_id === "number" && data.message_id > turnDone) {
          turnDone = data.message_id;
          $("message-list").setAttribute("data-turn-done", String(turnDone));
        }
        break;
      case "error":
        onError(data);
        break;
      default:
        break;
    }
  }

  function onAck(data) {
    var u = state.unacked.filter(function (x) { return x.client_id === data.client_id; })[0];
    state.unacked = state.unacked.filter(function (x) { return x.client_id !== data.client_id; });
    if (u && typeof data.id === "number") {
      // the desk stored it: show it as sent even if its echo is never seen (e.g. a resend)
      accept({ id: data.id, sender: "borrower", text: u.text, buttons: [], client_id: u.client_id,
               at: u.at, agent_name: null });
    }
    afterChange(false);
  }

  function onError(data) {
    var u = data.client_id ? state.unacked.filter(function (x) { return x.client_id === data.client_id; })[0] : null;
    if (data.code === "rate_limited" || data.code === "unavailable") {
      // not the borrower's fault and not lost: keep it in the outbox, resend after retry_after
      var wait = Number(data.retry_after);
      if (!isFinite(wait) || wait <= 0) wait = 5;
      wait = Math.min(wait, 300);
      holdUntil = Math.max(holdUntil, Date.now() + wait * 1000);
      clearTimeout(holdTimer);
      holdTimer = setTimeout(function () { holdTimer = null; flushOutbox(false); }, Math.max(0, holdUntil - Date.now()) + 50);
      if (!data.client_id) helloDropped = true;  // not a message of ours: most likely the hello
      state.unacked.forEach(function (x) {
        if (x.failed) return;
        // everything not yet acknowledged is resent in order once the hold is over
        if (x === u || x.held) { x.held = true; x.error = { code: data.code, retry_after: wait }; }
      });
      if (u) refreshPending(u);
      state.unacked.forEach(function (x) { if (x.held && x !== u) refreshPending(x); });
      persist();
      return;
    }
    if (!u) return;
    state.unacked = state.unacked.filter(function (x) { return x.client_id !== data.client_id; });
    dropPending(u.client_id);
    u.failed = true;
    u.held = false;
    u.error = { code: data.code || "error", limit: data.limit || null };
    // shown as not sent, with the reason, where it was sent (not below newer replies); never
    // resent by itself: the borrower may send it again or edit it
    state.failed.push(u);
    if (state.failed.length > MAX_FAILED) state.failed = state.failed.slice(-MAX_FAILED);
    placeFailed(u);
    persist();
    var msg = pendingNote(u);
    showBanner(msg, "error");
    setTimeout(function () { if (socketReady) showBanner(null); }, 5000);
  }

  /** Send what waits in the outbox (in order). `all`: also messages not held (on (re)connect). */
  function flushOutbox(all) {
    if (!state) return;
    if (Date.now() < holdUntil) return;
    if (helloDropped && socketReady && !all) {
      helloDropped = false;
      try { socket.send(JSON.stringify({ type: "hello", after: state.lastId })); } catch (e) { /* */ }
    }
    state.unacked.forEach(function (u) {
      if (u.failed) return;
      if (!all && !u.held) return;
      if (u.held || u.error) {
        u.held = false;
        u.error = null;
        refreshPending(u);
      }
      if (socketReady) transmit(u);
    });
    persist();
  }

  // ---------- wiring ----------
  document.querySelectorAll("[data-locale]").forEach(function (b) {
    b.addEventListener("click", function () {
      chosenLocale = b.getAttribute("data-locale");
      save(LOCALE_KEY, chosenLocale);
      applyText();
      if (borrowers && !$("picker").hidden) renderBorrowers();  // their lines, in this language
    });
  });
  $("composer").addEventListener("submit", onSubmit);
  $("messages").addEventListener("scroll", onScroll, { passive: true });
  $("input").addEventListener("input", autosize);
  $("input").addEventListener("keydown", function (ev) {
    if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing && ev.keyCode !== 229) {
      ev.preventDefault();
      $("composer").requestSubmit ? $("composer").requestSubmit() : onSubmit(ev);
    }
  });
  $("switch-user").addEventListener("click", function () { endSession(null); });
  window.addEventListener("online", function () {
    if (!stopped && !socket) { attempts = 0; connect(); }
  });
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible" && !stopped && !socket) { attempts = 0; connect(); }
  });

  // a small hook for tests and support staff: drop the socket to exercise reconnecting
  window.relendChat = {
    dropConnection: function () { if (socket) socket.close(4000, "dropped"); },
    connected: function () { return socketReady; },
    lastId: function () { return state ? state.lastId : 0; },
    handoff: function () { return handoffState(); },
    /** Resolves once the desk has answered a fresh "hello": every frame it sent before that
     *  (e.g. the bot's replies after an agent handed back) has been handled by then. */
    sync: function () {
      return new Promise(function (resolve, reject) {
        if (!socketReady || !socket) { reject(new Error("not connected")); return; }
        syncWaiters.push(resolve);
        socket.send(JSON.stringify({ type: "hello", after: state.lastId }));
        setTimeout(function () { reject(new Error("the desk did not answer the hello")); }, 20000);
      });
    }
  };

  Relend.boot("chat", Relend.languagesOf("data-locale"), function () {
    if (session && session.token && session.borrower_id) startChat();
    else showPicker(null);
  });
})();
