/* Relend agent console. Plain JS, no dependencies.
 *
 * Sign-in: a short access token (sent as a Bearer header, and in the agent socket's
 * subprotocol list, never in a URL) and a refresh token. Both live in sessionStorage only (this
 * tab; gone when it closes). The access token is refreshed shortly before it expires and after
 * any 401; a refused refresh ends the session. "Sign out" revokes the tokens at the desk and
 * removes everything this page stored about the session (the UI language is kept).
 *
 * Roles: only supervisors see the canned-reply editing controls. A case's detail, notes and
 * the eligibility run-check are for the agent who claimed it (or a supervisor, for reading).
 * The page runs under a strict CSP: no inline scripts or style attributes here.
 *
 * Every word on the page is a text of the catalog (page.console.* in texts/<lang>.yml), loaded
 * by common.js before the page starts; t("key") is the text in the console's language. The
 * desk's API errors carry a code and a message for developers: the page shows the catalog's
 * text for the code (error.<code>), never the message.
 */
(function () {
  "use strict";

  var KEY_PREFIX = "relend.console.";
  var SESSION_KEY = KEY_PREFIX + "session";
  var LANG_KEY = KEY_PREFIX + "lang";        // a preference, not part of the session: kept
  var DEFAULT_TTL_S = 900;

  var $ = Relend.$, el = Relend.el, fmt = Relend.fmt, load = Relend.load, save = Relend.save;
  function t(key) { return Relend.text(uiLang, key); }
  function has(key) { return Relend.has(uiLang, key); }
  /** What to tell the agent about a failed call: the catalog's text for the desk's error code. */
  function errorText(e) {
    if (!e || !e.status) return t("error.network");  // no answer at all
    return has("error." + e.code) ? t("error." + e.code) : fmt(t("error.other"), { code: e.code || e.status });
  }

  // ---------- helpers ----------
  /** Remove every key this page stored about a session, in both storages (the UI language
   *  preference stays). Also removes what earlier versions kept in localStorage. */
  function wipeSessionStorage() { Relend.wipe(KEY_PREFIX, LANG_KEY); }
  /** Hide (`hidden` true) or show the elements with these ids. */
  function setHidden(ids, hidden) { ids.forEach(function (id) { $(id).hidden = hidden; }); }
  function relTime(iso) {
    var then = new Date(iso).getTime();
    if (isNaN(then)) return "";
    var mins = Math.floor(Math.max(0, Date.now() - then) / 60000);
    if (mins < 1) return t("just_now");
    if (mins < 60) return fmt(t("min_ago"), { m: mins });
    if (mins < 60 * 24) return fmt(t("hour_ago"), { h: Math.floor(mins / 60), m: mins % 60 });
    return fmt(t("day_ago"), { d: Math.floor(mins / 1440) });
  }
  function absTime(iso) {
    var d = new Date(iso);
    if (isNaN(d.getTime())) return iso || "";
    var p = function (n) { return String(n).padStart(2, "0"); };
    return d.getFullYear() + "-" + p(d.getMonth() + 1) + "-" + p(d.getDate()) + " " + p(d.getHours()) + ":" + p(d.getMinutes());
  }
  function money(value, currency) {
    if (typeof value !== "number") return String(value === undefined || value === null ? "—" : value);
    var s = value.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
    return (currency === "CNY" ? "¥" : (currency ? currency + " " : "")) + s;
  }
  function langName(code) { return t("lang." + Relend.languageFor(code)); }
  function reasonLabel(code) { return has("reason." + code) ? t("reason." + code) : code || "—"; }

  // ---------- state ----------
  var uiLang = String(load(LANG_KEY, "zh"));  // made a language with texts once they are loaded
  try { localStorage.removeItem(SESSION_KEY); } catch (e) { /* an older version kept it here */ }
  // {token, refresh_token, expires_at (ms), ttl (s), agent: {id, name, role}}
  var session = load(SESSION_KEY, null, sessionStorage);
  if (session && (!session.token || !session.agent)) session = null;
  var queue = [];
  var current = null;                      // case detail
  var alertRender = null;                  // the case alert, said again in the console's language
  var seen = {};                           // message ids in the open transcript
  var payloadTitles = {};                  // quick-reply payload -> title (open case)
  var canned = [];
  var editingCanned = null;                // id or "new"
  var confirmingDelete = null;
  var socket = null;
  var wsAttempts = 0;
  var wsTimer = null;
  var stopped = true;
  var refreshing = null;                   // the refresh in flight (one at a time)
  var refreshTimer = null;
  var lastSocketRefresh = 0;               // when a 4401 on the socket last made us refresh
  var loginUnlockTimer = null;
  var liveBuffer = [];                     // recent live messages (survive a detail reload)
  // the open case's borrower records (GET /api/agent/cases/{id}/records): {caseId, state:
  // "loading" | "ok" | "unknown" | "unavailable" | "error", data, error}
  var records = null;
  var recordsTicket = 0;                   // only the last look asked for is shown

  // ---------- API ----------
  var NO_REFRESH = { "/api/agent/login": true, "/api/agent/refresh": true, "/api/agent/logout": true };

  /** One HTTP call; resolves with the JSON body, rejects with an Error carrying status/code. */
  function request(method, path, body, token, keepalive) {
    var opts = { method: method, headers: {}, credentials: "same-origin" };
    if (keepalive) opts.keepalive = true;  // survives the page being closed right after
    if (token) opts.headers.Authorization = "Bearer " + token;
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    return fetch(path, opts).then(function (r) {
      return r.text().then(function (raw) {
        var data = null;
        try { data = raw ? JSON.parse(raw) : null; } catch (e) { data = null; }
        if (r.ok) return data;
        var err = (data && data.error) || {};
        var detail = data && data.detail;
        var e2 = new Error(err.message || (Array.isArray(detail) ? detail.map(function (d) { return d.msg; }).join("; ") : "HTTP " + r.status));
        e2.status = r.status;
        e2.code = err.code || (r.status === 422 ? "invalid" : "http_" + r.status);
        e2.retryAfter = r.headers.get("Retry-After");
        throw e2;
      });
    });
  }

  function expiredError() {
    var e = new Error(t("error.session_expired"));
    e.status = 401;
    e.code = "session_expired";
    return e;
  }

  /** An API call as the signed-in agent: on a 401, refresh the access token and retry once;
   *  if that fails too, back to the login form. */
  function api(method, path, body) {
    var s = session;
    var used = s ? s.token : null;
    return request(method, path, body, used).then(function (data) {
      // signed out (or in as someone else) while this was on its way: drop the answer
      if (s !== session) throw expiredError();
      return data;
    }, function (e) {
      if (e.status !== 401 || !s || s !== session || NO_REFRESH[path]) throw e;
      // another call may have refreshed meanwhile: then just retry with the new token
      var fresh = session.token !== used ? Promise.resolve(session.token) : refreshAccess();
      return fresh.then(function (token) {
        if (s !== session) throw expiredError();
        return request(method, path, body, token).then(function (data) {
          if (s !== session) throw expiredError();
          return data;
        }, function (e2) {
          if (e2.status === 401 && s === session) { signOut(t("error.session_expired")); throw expiredError(); }
          throw e2;
        });
      });
    });
  }

  /** Get a new access token with the refresh token (one request at a time). Resolves with the
   *  new token; a refused refresh signs out; a network failure keeps the session and retries. */
  function refreshAccess() {
    if (refreshing) return refreshing;
    var s = session;
    if (!s) return Promise.reject(expiredError());
    if (!s.refresh_token) { signOut(t("error.session_expired")); return Promise.reject(expiredError()); }
    var done = function () { refreshing = null; };
    refreshing = request("POST", "/api/agent/refresh", undefined, s.refresh_token).then(function (body) {
      if (s !== session) throw expiredError();  // signed out (or in again) meanwhile
      if (!body || !body.token) throw new Error("no token in the refresh answer");
      s.token = body.token;
      setExpiry(s, body.expires_in);
      storeSession();
      scheduleRefresh();
      return s.token;
    }, function (e) {
      if (s !== session) throw expiredError();
      if (e.status === 401 || e.status === 403) {
        signOut(t("error.session_expired"));
        throw expiredError();
      }
      clearTimeout(refreshTimer);  // the desk or the network is down: try again shortly
      refreshTimer = setTimeout(function () { refreshAccess().catch(function () { /* */ }); }, 30000);
      throw e;
    });
    refreshing.then(done, done);
    return refreshing;
  }

  function setExpiry(s, expiresIn) {
    var ttl = Number(expiresIn);
    if (!isFinite(ttl) || ttl <= 0) ttl = DEFAULT_TTL_S;
    s.ttl = ttl;
    s.expires_at = Date.now() + ttl * 1000;
  }
  /** Milliseconds before expiry at which to refresh: a minute, or a fifth of a short lifetime. */
  function refreshMargin(s) {
    return Math.max(2000, Math.min(60000, (s.ttl || DEFAULT_TTL_S) * 1000 * 0.2));
  }
  function needsRefresh(s) {
    return !s.expires_at || Date.now() >= s.expires_at - refreshMargin(s);
  }
  function scheduleRefresh() {
    clearTimeout(refreshTimer);
    refreshTimer = null;
    if (!session) return;
    var delay = Math.max(0, session.expires_at - refreshMargin(session) - Date.now());
    refreshTimer = setTimeout(function () {
      refreshTimer = null;
      if (session) refreshAccess().catch(function () { /* signed out or retrying */ });
    }, Math.min(delay, 2147483000));
  }
  function storeSession() {
    if (session) save(SESSION_KEY, session, sessionStorage);
  }

  function toast(text, kind) {
    var node = el("div", { "class": "toast" + (kind ? " " + kind : ""), testid: "toast", text: text });
    $("toasts").appendChild(node);
    setTimeout(function () { if (node.parentNode) node.parentNode.removeChild(node); }, 3200);
  }

  // ---------- i18n ----------
  function applyText() {
    Relend.applyTexts(uiLang);
    document.querySelectorAll("[data-ui-lang]").forEach(function (b) {
      b.classList.toggle("active", b.getAttribute("data-ui-lang") === uiLang);
    });
    $("queue-count").textContent = String(queue.length);
    refreshLive();
  }

  // ---------- login ----------
  function showLogin(message) {
    $("login-view").hidden = false;
    setHidden(["workspace", "me", "me-role", "logout", "live"], true);
    showLoginError(message || null);
    applyText();
    $("username").focus();
  }
  function showLoginError(text, code) {
    var box = $("login-error");
    box.hidden = !text;
    box.textContent = text || "";
    if (code) box.setAttribute("data-code", code); else box.removeAttribute("data-code");
  }

  /** Retry-After: seconds or an HTTP date -> seconds (or null). */
  function retryAfterSeconds(value) {
    if (value === null || value === undefined || value === "") return null;
    var n = Number(value);
    if (isFinite(n)) return Math.max(0, Math.ceil(n));
    var at = Date.parse(value);
    return isNaN(at) ? null : Math.max(0, Math.ceil((at - Date.now()) / 1000));
  }
  function waitText(seconds) {
    return seconds < 90 ? fmt(t("seconds"), { n: Math.max(1, seconds) }) : fmt(t("minutes"), { n: Math.ceil(seconds / 60) });
  }

  function onLogin(ev) {
    ev.preventDefault();
    var username = $("username").value.trim();
    var password = $("password").value;
    var submit = document.querySelector("[data-testid=login-submit]");
    submit.disabled = true;
    request("POST", "/api/agent/login", { username: username, password: password }, null).then(function (body) {
      submit.disabled = false;
      session = { token: body.token, refresh_token: body.refresh_token || null, agent: body.agent || {} };
      setExpiry(session, body.expires_in);
      storeSession();
      $("password").value = "";
      startWorkspace();
    }).catch(function (e) {
      submit.disabled = false;
      if (e.status === 429 || e.code === "too_many_attempts") {
        var wait = retryAfterSeconds(e.retryAfter);
        showLoginError(wait ? fmt(t("too_many_attempts"), { wait: waitText(wait) }) : t("too_many_attempts_no_wait"),
                       "too_many_attempts");
        if (wait) {  // trying again before then only extends the lock: wait with the button
          submit.disabled = true;
          clearTimeout(loginUnlockTimer);
          loginUnlockTimer = setTimeout(function () { submit.disabled = false; }, Math.min(wait, 3600) * 1000);
        }
      } else if (e.status === 401) {
        showLoginError(t("bad_login"), "bad_credentials");
      } else {
        showLoginError(e.status ? errorText(e) : t("login_unavailable"), e.code || "error");
      }
    });
  }

  /** Forget the session here: stop everything, clear the screen and the stored keys. */
  function signOut(message) {
    stopSocket();
    clearTimeout(refreshTimer);
    refreshTimer = null;
    refreshing = null;
    session = null;
    current = null;
    queue = [];
    canned = [];
    liveBuffer = [];
    seen = {};
    payloadTitles = {};
    editingCanned = null;
    confirmingDelete = null;
    wipeSessionStorage();
    clearWorkspace();
    showLogin(message || null);
  }

  /** Nothing of the last agent's work stays in the DOM for the next one. */
  function clearWorkspace() {
    ["queue", "transcript", "context", "notes", "canned-list", "lookup-results"].forEach(function (id) {
      $(id).innerHTML = "";
    });
    $("context").appendChild(el("div", { "class": "muted small-text", "data-i18n": "no_case", text: t("no_case") }));
    ["reply", "note-input", "lookup-input", "return-note", "canned-title", "canned-zh", "canned-en"].forEach(function (id) {
      $(id).value = "";
    });
    $("queue-count").textContent = "0";
    setHidden(["case", "case-forbidden", "notes-panel", "canned", "canned-form", "lookup-empty"], true);
    $("case-placeholder").hidden = false;
    $("me").textContent = "";
    $("toasts").innerHTML = "";
  }

  /** "Sign out": revoke at the desk (in the background, with the tokens we had), forget here. */
  function logout() {
    var s = session;
    signOut(null);
    if (!s) return;
    request("POST", "/api/agent/logout", undefined, s.token, true).catch(function (e) {
      if (e.status !== 401 || !s.refresh_token) return null;
      // the access token had expired: get a fresh one just to revoke the session with it
      return request("POST", "/api/agent/refresh", undefined, s.refresh_token, true).then(function (body) {
        return request("POST", "/api/agent/logout", undefined, body.token, true);
      });
    }).catch(function () { /* already revoked or expired: nothing left to revoke */ });
  }

  function isSupervisor() {
    return !!(session && session.agent && session.agent.role === "supervisor");
  }

  function startWorkspace() {
    $("login-view").hidden = true;
    setHidden(["workspace", "me", "logout", "live"], false);
    $("me").textContent = session.agent.name;
    $("me").setAttribute("data-initial", String(session.agent.name || "?").charAt(0));
    $("me").setAttribute("data-role", session.agent.role || "agent");
    applyText();
    applyRole();
    stopped = false;
    // a reload after the access token ran out: refresh first, then everything else
    var ready = needsRefresh(session) ? refreshAccess() : Promise.resolve();
    ready.then(function () {
      if (!session) return;
      scheduleRefresh();
      loadQueue();
      loadCanned();
      connectSocket();
    }, function (e) {
      if (!session) return;  // the refresh was refused: already back at the login form
      // the desk is unreachable: start anyway; calls retry the refresh on their 401
      toast(errorText(e), "error");
      loadQueue();
      loadCanned();
      connectSocket();
    });
  }

  function applyRole() {
    var sup = isSupervisor();
    $("me-role").hidden = !session;
    $("me-role").textContent = session ? t("role." + (sup ? "supervisor" : "agent")) : "";
    $("me-role").setAttribute("data-role", sup ? "supervisor" : "agent");
    $("canned-add").hidden = !sup;
    $("insights-link").hidden = !sup;  // the lender's insights (insights.html): supervisors
    if (!sup) { $("canned-form").hidden = true; editingCanned = null; confirmingDelete = null; }
  }

  // ---------- live updates ----------
  function connectSocket() {
    clearTimeout(wsTimer);
    if (stopped || !session) return;
    var ws;
    try {
      ws = Relend.openSocket("/ws/agent", session.token);  // always the current access token
    } catch (e) {
      if (e && e.name === "SyntaxError") { signOut(t("error.session_expired")); return; }  // unusable token
      wsTimer = setTimeout(connectSocket, 2000);
      return;
    }
    socket = ws;
    ws.relendToken = session.token;
    ws.onopen = function () {
      if (ws !== socket) return;
      wsAttempts = 0;
      refreshLive();
      loadQueue();  // whatever changed while we were away
      if (current) reloadCase(false);
    };
    ws.onmessage = function (ev) {
      if (ws !== socket) return;
      var data;
      try { data = JSON.parse(ev.data); } catch (e) { return; }
      if (data.type === "queue") loadQueue();
      else if (data.type === "message") onLiveMessage(data);  // only for cases we have claimed
      else if (data.type === "case_context") onCaseContext(data.case_id);  // the bot checked again
    };
    ws.onclose = function (ev) {
      if (ws !== socket) return;
      socket = null;
      refreshLive();
      if (stopped) return;
      if (ev.code === 4401) {
        // the access token ran out (or was revoked): refresh once and reconnect; if the desk
        // refuses again right away, or refuses the refresh, back to the login form
        if (Date.now() - lastSocketRefresh < 30000) { signOut(t("error.session_expired")); return; }
        lastSocketRefresh = Date.now();
        var used = ws.relendToken;
        var fresh = session && session.token !== used ? Promise.resolve() : refreshAccess();
        fresh.then(function () { if (!stopped) connectSocket(); }, function (e) {
          if (stopped || !session || e.status === 401) return;
          wsTimer = setTimeout(connectSocket, 5000);  // network trouble: try again
        });
        return;
      }
      var delay = Math.min(15000, 500 * Math.pow(2, wsAttempts)) * (0.8 + Math.random() * 0.4);
      wsAttempts += 1;
      wsTimer = setTimeout(connectSocket, delay);
    };
  }
  function stopSocket() {
    stopped = true;
    clearTimeout(wsTimer);
    if (socket) { var s = socket; socket = null; try { s.close(1000); } catch (e) { /* */ } }
  }
  function refreshLive() {
    var ok = !!(socket && socket.readyState === 1);
    $("live").classList.toggle("off", !ok);
    $("live-text").textContent = ok ? t("live") : t("reconnecting");
  }
  setInterval(function () {  // keep the socket warm behind proxies; the desk ignores the text
    if (socket && socket.readyState === 1) { try { socket.send("ping"); } catch (e) { /* */ } }
  }, 25000);

  // ---------- queue ----------
  function loadQueue() {
    if (!session) return Promise.resolve();
    return api("GET", "/api/agent/queue").then(function (body) {
      queue = body.cases || [];
      renderQueue();
      if (current) syncCurrentFromQueue();
    }).catch(function (e) { if (e.status !== 401) toast(errorText(e), "error"); });
  }

  function renderQueue() {
    var list = $("queue");
    list.innerHTML = "";
    $("queue-count").textContent = String(queue.length);
    $("queue-empty").hidden = queue.length > 0;
    queue.forEach(function (c) {
      var mine = c.status === "claimed" && c.claimed_by === session.agent.name;
      var mins = (Date.now() - new Date(c.waiting_since).getTime()) / 60000;
      var claimBtn = c.status === "waiting" ? el("button", {
        type: "button", "class": "btn primary small", testid: "queue-claim", text: t("claim"),
        onclick: function (ev) { ev.stopPropagation(); claim(c.case_id); }
      }) : el("span", {
        "class": "claimed-by" + (mine ? "" : " other"), testid: "queue-claimed-by",
        text: mine ? t("claimed_by_me") : fmt(t("claimed_by"), { name: c.claimed_by || "?" })
      });
      var item = el("li", {
        "class": "queue-item" + (current && current.case_id === c.case_id ? " selected" : ""),
        testid: "queue-item", "data-case-id": c.case_id, "data-borrower-id": c.borrower_id,
        "data-status": c.status, tabindex: "0",
        onclick: function () { openCase(c.case_id); },
        onkeydown: function (ev) { if (ev.key === "Enter") openCase(c.case_id); }
      }, [
        el("div", { "class": "row1" }, [
          el("span", { "class": "bid", text: c.borrower_id }),
          el("span", { "class": "since" + (mins >= 10 ? " long" : ""), testid: "queue-since",
                       "data-since": c.waiting_since, title: absTime(c.waiting_since),
                       text: relTime(c.waiting_since) })
        ]),
        el("div", { "class": "row2" }, [
          c.primary_reason ? el("span", { "class": "tag code", testid: "queue-primary-reason", title: c.primary_reason,
                                           "data-code": c.primary_reason, text: codeLabel(c.primary_reason) }) : null,
          el("span", { "class": "tag lang", text: langName(c.language) })
        ]),
        el("div", { "class": "row3" }, [
          el("span", { "class": "muted small-text", text: reasonLabel(c.reason) }),
          claimBtn
        ])
      ]);
      list.appendChild(item);
    });
  }
  setInterval(function () {
    document.querySelectorAll("[data-since]").forEach(function (n) {
      n.textContent = relTime(n.getAttribute("data-since"));
    });
  }, 30000);

  function syncCurrentFromQueue() {
    var q = queue.filter(function (c) { return c.case_id === current.case_id; })[0];
    if (!q) {
      if (current.status === "waiting" || current.status === "claimed") reloadCase(false);
      return;
    }
    if (q.status !== current.status || q.claimed_by !== current.claimed_by) {
      // claimed by someone else meanwhile: no "claim" button any more, say who has it (the
      // detail may no longer be ours to see: reloading it shows the "not yours" panel then)
      if (q.status === "claimed" && q.claimed_by !== session.agent.name) {
        current.status = q.status;
        current.claimed_by = q.claimed_by;
        renderCaseHead();
        var taker = q.claimed_by || "?";
        alertOf(function () { return fmt(t("case_taken"), { name: taker }); }, "info");
      }
      reloadCase(false);
      return;
    }
    // live messages come only for claimed cases: keep a waiting case's transcript current
    if (q.status === "waiting") reloadCase(false);
  }

  function claim(caseId) {
    return api("POST", "/api/agent/cases/" + caseId + "/claim").then(function () {
      loadQueue();
      // the detail again, now as its claimer: from here on its messages come on the socket
      return openCase(caseId).then(function () {
        if (current && current.case_id === caseId) { showAlert(t("claimed_ok"), "ok"); $("reply").focus(); }
      });
    }).catch(function (e) {
      if (e.status === 409) {
        // someone was faster: show who (a supervisor still sees the case; others get the
        // "not yours" panel, which names the claimer from the queue)
        return loadQueue().then(function () { return openCase(caseId); }).then(function () {
          if (!current || current.case_id !== caseId) {
            // not ours to read now: the panel names the claimer; say why the claim failed too
            var taker = claimerFromQueue(caseId);
            toast(fmt(t("already_claimed"), { who: taker ? fmt(t("claimed_by_suffix"), { name: taker }) : "" }), "error");
            return;
          }
          var name = current.claimed_by || claimerFromQueue(caseId);
          alertOf(function () {
            return fmt(t("already_claimed"), { who: name ? fmt(t("claimed_by_suffix"), { name: name }) : "" });
          }, "error");
        });
      }
      if (e.status === 401) return;
      toast(errorText(e), "error");
    });
  }
  function claimerFromQueue(caseId) {
    var q = queue.filter(function (c) { return c.case_id === caseId; })[0];
    return q ? q.claimed_by : null;
  }

  // ---------- case ----------
  var opening = 0;  // only the last case asked for is shown
  function openCase(caseId) {
    var ticket = ++opening;
    return api("GET", "/api/agent/cases/" + caseId).then(function (detail) {
      if (ticket !== opening) return;
      var switching = !current || current.case_id !== detail.case_id;
      if (!switching) detail.notes = mergeNotes(current.notes, detail.notes);
      current = detail;
      if (switching) {
        $("case-alert").hidden = true;
        $("return-form").hidden = true;
        $("reply").value = "";
      }
      if (switching || !records || records.caseId !== detail.case_id) loadRecords(detail.case_id, true);
      renderCase(true);
      renderQueue();
    }).catch(function (e) {
      if (ticket !== opening) return;
      if (e.status === 403) { showCaseForbidden(caseId); return; }
      if (e.status !== 401) toast(errorText(e), "error");
    });
  }

  /** The case's notes from a fresh read, plus any this page added that the read predates: a
   *  reload that left before a note was saved and came back after it must not wipe the note
   *  (notes are never deleted, so a note we hold is a note that exists). */
  function mergeNotes(held, fresh) {
    var merged = (fresh || []).slice();
    var ids = {};
    merged.forEach(function (n) { ids[n.id] = true; });
    (held || []).forEach(function (n) { if (!ids[n.id]) merged.push(n); });
    return merged;
  }

  function reloadCase(full) {
    if (!current) return Promise.resolve();
    var id = current.case_id;
    return api("GET", "/api/agent/cases/" + id).then(function (detail) {
      if (!current || current.case_id !== id) return;
      var contextChanged = JSON.stringify(current.context) !== JSON.stringify(detail.context);
      detail.notes = mergeNotes(current.notes, detail.notes);
      current = detail;
      if (full) renderCase(true);
      else {
        if (contextChanged) {  // the bot checked the account again, or a change came in
          loadRecords(id, false);
          renderContext();
        }
        renderCaseHead();
        (detail.messages || []).forEach(function (m) { appendMessage(m); });
        renderNotes();
      }
    }).catch(function (e) {
      // e.g. another agent claimed the waiting case we were looking at
      if (e.status === 403 && current && current.case_id === id) showCaseForbidden(id);
    });
  }

  /** The desk will not show this case to us: say so plainly instead of a half-drawn panel. */
  function showCaseForbidden(caseId) {
    current = null;
    seen = {};
    payloadTitles = {};
    setHidden(["case", "case-placeholder", "notes-panel", "canned"], true);
    $("transcript").innerHTML = "";
    $("notes").innerHTML = "";
    var ctx = $("context");
    ctx.innerHTML = "";
    ctx.appendChild(el("div", { "class": "muted small-text", "data-i18n": "no_case", text: t("no_case") }));
    var name = claimerFromQueue(caseId);
    var box = $("case-forbidden");
    box.hidden = false;
    box.setAttribute("data-case-id", String(caseId));
    box.textContent = name ? fmt(t("case_forbidden"), { who: name }) : t("case_forbidden_anon");
    renderQueue();
  }

  function isMine() {
    return current && current.status === "claimed" && current.claimed_by === session.agent.name;
  }
  function isOpen() { return current && (current.status === "waiting" || current.status === "claimed"); }

  function renderCase() {
    setHidden(["case-placeholder", "case-forbidden"], true);
    setHidden(["case", "notes-panel"], false);
    renderCaseHead();
    renderContext();
    renderNotes();
    var box = $("transcript");
    box.innerHTML = "";
    seen = {};
    payloadTitles = {};
    (current.messages || []).forEach(function (m) { appendMessage(m); });
    // live messages that arrived while the detail was on its way
    liveBuffer.forEach(function (m) { if (m.conversation_id === current.conversation_id) appendMessage(m); });
    box.scrollTop = box.scrollHeight;
    renderCanned();
  }

  function renderCaseHead() {
    var c = current;
    $("case-borrower").textContent = c.borrower_id;
    var status = $("case-status");
    status.className = "badge " + c.status;
    status.setAttribute("data-status", c.status);
    status.textContent = c.status === "claimed" ? (isMine() ? t("claimed_by_me") : fmt(t("claimed_by"), { name: c.claimed_by })) : t("status." + c.status);
    $("case-sub").textContent = "#" + c.case_id + " · " + langName(c.language) + " · " + reasonLabel(c.reason) +
      " · " + t("waiting_since") + " " + relTime(c.waiting_since);
    var mine = isMine();
    $("claim-btn").hidden = c.status !== "waiting";  // a case someone took is not claimable
    if (!mine || $("close-btn").getAttribute("data-confirm") !== String(c.case_id)) cancelCloseConfirm();
    $("claim-btn").className = "btn " + (c.status === "waiting" ? "primary" : "");
    $("return-btn").hidden = !mine;
    $("close-btn").hidden = !mine;
    if (!mine) $("return-form").hidden = true;
    $("reply").disabled = !mine;
    $("reply-send").disabled = !mine;
    $("reply-form").classList.toggle("disabled", !mine);
    $("reply-hint").textContent = mine ? fmt(t("replying_in"), { lang: langName(c.language) })
      : isOpen() ? t("claim_first") : fmt(t("ended"), { status: t("status." + c.status) });
    $("canned-lang").textContent = "· " + langName(c.language);
    // notes are written by the case's claimer only
    $("note-input").disabled = !mine;
    document.querySelector("[data-testid=note-add]").disabled = !mine;
    $("note-form").classList.toggle("disabled", !mine);
    $("notes-locked").hidden = mine;
  }

  /** An alert from a text of the catalog with fields filled in: ``render`` says it in the
   *  console's current language (its key and values), so switching the language says it again
   *  -- "王磊 Wang Lei 已接手该会话。" does not stay Chinese. */
  function alertOf(render, kind) {
    showAlert(render(), kind, render);
  }

  function showAlert(text, kind, render) {
    var a = $("case-alert");
    alertRender = text && render ? render : null;  // how to say it again in another language
    // the alert takes its room from the transcript: what the agent was reading stays in view
    // (the newest message when they were at the end, else the same first line)
    var box = $("transcript");
    var atEnd = box.scrollHeight - box.scrollTop - box.clientHeight < 24;
    var firstVisible = box.scrollTop;
    a.hidden = !text;
    a.textContent = text || "";
    a.className = "case-alert" + (kind && kind !== "error" ? " " + kind : "");
    a.setAttribute("data-kind", kind || "error");
    box.scrollTop = atEnd ? box.scrollHeight : firstVisible;
  }

  function appendMessage(m) {
    if (!m || seen[m.id]) return;
    seen[m.id] = true;
    var box = $("transcript");
    var near = box.scrollHeight - box.scrollTop - box.clientHeight < 160;
    var node;
    if (m.sender === "system") {
      node = el("div", { "class": "t-system", testid: "t-message", "data-sender": "system", "data-id": m.id }, [
        el("span", { text: m.text })
      ]);
    } else {
      (m.buttons || []).forEach(function (b) { payloadTitles[b.payload] = b.title; });
      var ours = m.sender !== "borrower";
      var label = m.sender === "borrower" ? t("borrower_label") : m.sender === "bot" ? t("bot_label")
        : t("agent_label") + (m.agent_name ? " · " + m.agent_name : "");
      var text = m.text;
      var viaButton = m.sender === "borrower" && text && text.charAt(0) === "/" && payloadTitles[text];
      node = el("div", { "class": "t-row " + m.sender + (ours ? " ours" : ""), testid: "t-message",
                         "data-sender": m.sender, "data-id": m.id }, [
        el("div", { "class": "t-msg" }, [
          el("div", { "class": "t-label" }, [el("span", { text: label }), el("span", { text: absTime(m.at).slice(11) })]),
          el("div", { "class": "t-bubble", testid: "t-text" }, Relend.withIds(viaButton ? payloadTitles[text] : shownText(text))),
          viaButton ? el("div", { "class": "t-label" }, [el("span", { title: text, text: t("quick_reply") })]) : null,
          m.buttons && m.buttons.length ? el("div", { "class": "t-buttons" }, m.buttons.map(function (b) {
            return el("span", { text: b.title });
          })) : null
        ])
      ]);
    }
    // keep id order even if a live message overtakes the initial load
    var after = null;
    var rows = box.children;
    for (var i = rows.length - 1; i >= 0; i--) {
      if (Number(rows[i].getAttribute("data-id")) < m.id) { after = rows[i]; break; }
    }
    if (after) box.insertBefore(node, after.nextSibling);
    else box.insertBefore(node, box.firstChild);
    if (near || m.sender === "agent") box.scrollTop = box.scrollHeight;
  }

  /** The bot checked the account again for a case: the queue (its primary reason) and, if it is
   *  the open one, the context panel show the new decision. The frame carries no content. */
  function onCaseContext(caseId) {
    loadQueue();
    if (current && current.case_id === caseId) reloadCase(false);
  }

  /** A borrower's message as the agent reads it: a button's payload ("/request_human") by
   *  the button's title, or else by what it asks for; anything else as it is. */
  function shownText(text) {
    if (!text || text.charAt(0) !== "/") return text;
    if (payloadTitles[text]) return payloadTitles[text];
    var intent = text.slice(1).split("{")[0];
    return has("topic." + intent) ? fmt(t("quick_reply_for"), { what: topicLabel(intent) }) : text;
  }

  /** The open transcript again, in the console's language now (labels are drawn once). */
  function redrawTranscript() {
    var box = $("transcript");
    var atEnd = box.scrollHeight - box.scrollTop - box.clientHeight < 160;
    var top = box.scrollTop;
    box.innerHTML = "";
    seen = {};
    payloadTitles = {};
    (current.messages || []).forEach(function (m) { appendMessage(m); });
    liveBuffer.forEach(function (m) { if (m.conversation_id === current.conversation_id) appendMessage(m); });
    box.scrollTop = atEnd ? box.scrollHeight : top;
  }

  function onLiveMessage(m) {
    if (!m || typeof m.id !== "number") return;
    liveBuffer.push(m);
    if (liveBuffer.length > 100) liveBuffer = liveBuffer.slice(-100);
    if (current && m.conversation_id === current.conversation_id) appendMessage(m);
  }

  // ---------- labels and pictures for the context panel ----------
  /* A decision's codes, detail names and values in words (page.console.code.*, detail.*,
   * value.*, factor.*, topic.*); a code this catalog does not know yet shows as it is. */
  var MONEY_DETAILS = { amount: true, amount_in_use: true, limit_before_closing: true,
                        previous_limit: true, new_limit: true, outstanding: true, principal: true };
  function codeLabel(code) { return has("code." + code) ? t("code." + code) : code || "—"; }
  function topicLabel(intent) { return has("topic." + intent) ? t("topic." + intent) : intent; }
  function detailLabel(key) { return has("detail." + key) ? t("detail." + key) : key; }
  function valueLabel(v) { return has("value." + v) ? t("value." + v) : v; }
  function factorText(f) {
    if (!f || typeof f !== "object") return String(f);
    var code = f.factor || f.code;
    if (!has("factor." + code)) return code || JSON.stringify(f);
    return fmt(t("factor." + code), { count: f.count, days: f.window_days || f.inactive_days,
      percent: typeof f.ratio === "number" ? Math.round(f.ratio * 100) : "", last: f.last_at ? absTime(f.last_at).slice(0, 10) : "" });
  }
  /** One detail of a reason, as an agent reads it: amounts as money, moments as times, codes
   *  in words, loans and repayments in a line each. */
  function detailText(key, v, currency) {
    if (v === null || v === undefined || v === "") return "—";
    if (MONEY_DETAILS[key] && typeof v === "number") return money(v, currency);
    if (typeof v === "boolean") return v ? t("yes") : t("no");
    if (typeof v === "number") return String(v);
    if (typeof v === "string") return /^\d{4}-\d\d-\d\dT/.test(v) ? absTime(v) : valueLabel(v);
    if (Array.isArray(v)) {
      if (!v.length) return t("none");
      return v.map(function (x) {
        if (!x || typeof x !== "object") return String(x);
        if (x.factor) return factorText(x);
        if (x.instalments_total !== undefined) {
          return fmt(t("loan_line"), { loan_id: x.loan_id, paid: x.instalments_paid, total: x.instalments_total,
                                       outstanding: money(x.outstanding, currency) });
        }
        if (x.repayment_id || x.paid_at) {
          return fmt(t("repayment_line"), { amount: money(x.amount, currency), loan_id: x.loan_id || "—",
                                            paid: absTime(x.paid_at) });
        }
        return x.code || x.id || x.incident_id || JSON.stringify(x);
      }).join(t("list_separator"));
    }
    return Object.keys(v).map(function (k) { return detailLabel(k) + " " + detailText(k, v[k], currency); }).join(t("list_separator"));
  }
  /** The window of reason `r` of decision `d` (now marked), when the decision gives both its
   *  ends; else nothing. */
  function reasonPicture(d, r) {
    var s = Relend.situationOf(d, r, new Date().toISOString(), uiLang);
    return s && s.timeline ? Relend.situationView(s, uiLang, "timeline") : null;
  }
  /** The limit in use versus available, under the decision's figures, when part of it is not
   *  available. */
  function limitPicture(d) {
    var s = Relend.situationOf(d, null, new Date().toISOString(), uiLang);
    return s && s.limit ? Relend.situationView(s, uiLang, "limit") : null;
  }

  // ---------- context panel ----------
  function kv(rows) {
    var dl = el("dl", { "class": "kv" });
    rows.forEach(function (r) {
      if (!r) return;
      dl.appendChild(el("dt", { text: r[0] }));
      var dd = el("dd", { testid: r[2] || null });
      if (typeof r[1] === "string") dd.textContent = r[1];
      else if (r[1]) dd.appendChild(r[1]);
      dl.appendChild(dd);
    });
    return dl;
  }

  function renderContext() {
    var c = current;
    var ctx = c.context || {};
    var box = $("context");
    box.innerHTML = "";
    if (ctx.backend_failed) box.appendChild(el("div", { "class": "warn-box", testid: "ctx-backend-failed", text: t("backend_failed") }));
    box.appendChild(kv([
      [t("borrower_id"), el("span", { "class": "mono", text: c.borrower_id }), "ctx-borrower-id"],
      [t("language"), langName(c.language), "ctx-language"],
      [t("handoff_reason"), reasonLabel(c.reason), "ctx-reason"],
      [t("since"), absTime(c.waiting_since), "ctx-since"],
      [t("conversation"), el("span", { "class": "mono", text: c.conversation_id }), "ctx-conversation"]
    ]));

    var topics = ctx.topics || [];
    box.appendChild(el("div", { "class": "ctx-block" }, [
      el("div", { "class": "label", text: t("topics") }),
      el("div", { "class": "chips", testid: "ctx-topics" }, topics.length ? topics.map(function (x) {
        return el("span", { "class": "tag topic", title: x, "data-code": x, text: topicLabel(x) });
      }) : [el("span", { "class": "muted small-text", text: t("none") })])
    ]));

    var d = ctx.decision;
    var dBlock = el("div", { "class": "ctx-block" }, [el("div", { "class": "label", text: t("decision") })]);
    if (d && typeof d === "object") {
      var card = el("div", { "class": "decision", testid: "ctx-decision" }, [
        el("div", { "class": "head" }, [
          el("span", { "class": "tag " + (d.eligible ? "ok" : "bad"), testid: "ctx-eligible",
                       "data-eligible": String(!!d.eligible), text: d.eligible ? t("eligible") : t("not_eligible") }),
          el("span", { "class": "muted small-text", title: d.decision_id || "", text: d.checked_at ? t("checked_at") + " " + absTime(d.checked_at) : "" })
        ]),
        el("div", { "class": "limits" }, [
          el("div", null, [el("div", { "class": "num", testid: "ctx-available", text: money(d.available_limit, d.currency) }),
                           el("div", { "class": "cap", text: t("available") })]),
          el("div", null, [el("div", { "class": "num", testid: "ctx-total", text: money(d.total_limit, d.currency) }),
                           el("div", { "class": "cap", text: t("total") })])
        ]),
        limitPicture(d)
      ]);
      (d.reasons || []).forEach(function (r) {
        var details = r.details || {};
        var items = Object.keys(details).map(function (k) {
          return el("li", { "data-key": k }, [el("span", { "class": "k", text: detailLabel(k) }), el("span", { "class": "v", text: detailText(k, details[k], d.currency) })]);
        });
        if (r.retry_after) items.push(el("li", null, [el("span", { "class": "k", text: t("retry_after") }), el("span", { "class": "v", text: absTime(r.retry_after) })]));
        if (r.next_review_at) items.push(el("li", null, [el("span", { "class": "k", text: t("next_review") }), el("span", { "class": "v", text: absTime(r.next_review_at) })]));
        card.appendChild(el("div", { "class": "reason", testid: "ctx-reason-code", "data-code": r.code }, [
          el("div", { "class": "code-line" }, [
            el("span", { "class": "code", title: r.code, text: codeLabel(r.code) }),
            r.blocking ? el("span", { "class": "tag blocking", text: t("blocking") }) : null,
            r.appealable ? el("span", { "class": "tag appealable", text: t("appealable") }) : null
          ]),
          items.length ? el("ul", { "class": "details", testid: "ctx-reason-details" }, items) : null,
          reasonPicture(d, r)
        ]));
      });
      if (d.decision_id) card.appendChild(el("div", { "class": "muted small-text decision-id" }, [t("decision_id") + " ", el("span", { "class": "mono", text: d.decision_id })]));
      dBlock.appendChild(card);
    } else {
      dBlock.appendChild(el("div", { "class": "muted small-text", testid: "ctx-decision", text: t("no_decision") }));
    }
    box.appendChild(dBlock);

    var appeals = ctx.appeal_ids || [];
    box.appendChild(el("div", { "class": "ctx-block" }, [
      el("div", { "class": "label", text: t("appeal_ids") }),
      el("div", { "class": "chips", testid: "ctx-appeal-ids" }, appeals.length ? appeals.map(function (x) {
        return el("span", { "class": "tag appeal", testid: "ctx-appeal-id", text: x });
      }) : [el("span", { "class": "muted small-text", text: t("none") })])
    ]));

    box.appendChild(recordsBlock());

    // what changed in the account while a person has the case (desk/notices.py: the bot did
    // not tell the borrower): the kind in the console's language, when, and the text with the
    // backend's figures, in the case's language (what the borrower would have read)
    var notices = Array.isArray(ctx.notices) ? ctx.notices : [];
    if (notices.length) {
      box.appendChild(el("div", { "class": "ctx-block" }, [
        el("div", { "class": "label", text: t("notices") }),
        el("ol", { "class": "ctx-notices", testid: "ctx-notices" }, notices.slice().reverse().map(function (n) {
          var kind = has("notice_kind." + n.kind) ? t("notice_kind." + n.kind) : t("notice_kind_other");
          return el("li", { testid: "ctx-notice", "data-kind": n.kind || "" }, [
            el("div", { "class": "notice-head" }, [
              el("strong", { testid: "ctx-notice-kind", text: kind }),
              el("span", { "class": "muted small-text", testid: "ctx-notice-at", text: absTime(n.at) })
            ]),
            el("div", { "class": "notice-text", testid: "ctx-notice-text", text: n.text || "" })
          ]);
        }))
      ]));
    }

    if (ctx.unfiled_appeal_statement) {
      box.appendChild(el("div", { "class": "ctx-block" }, [
        el("div", { "class": "label", text: t("unfiled") }),
        el("div", { "class": "statement", testid: "ctx-unfiled-statement", text: ctx.unfiled_appeal_statement })
      ]));
    }
    var tr = ctx.transcript || [];
    if (tr.length) {
      box.appendChild(el("details", { "class": "bot-transcript", testid: "ctx-transcript" }, [
        el("summary", { text: fmt(t("bot_transcript"), { n: tr.length }) }),
        el("ol", null, tr.map(function (line) {
          return el("li", null, [el("strong", { text: fmt(t("transcript_who"), { who: line.sender === "borrower" ? t("borrower_label") : t("bot_label") }) })]
            .concat(Relend.withIds(shownText(line.text || ""))));
        }))
      ]));
    }
  }

  // ---------- the borrower's records (loans, schedule, repayments, reminders) ----------
  /* The records the assistant answers from (the backend's, through the desk: desk/records.py),
   * for the open case. Amounts as the rest of the panel (money), days as YYYY-MM-DD in the
   * borrower's time zone (a due date is a day of theirs), moments as absTime. */
  function loadRecords(caseId, fresh) {
    var ticket = ++recordsTicket;
    // a fresh case starts empty; a reload keeps what is shown until the answer is there
    if (fresh || !records || records.caseId !== caseId) records = { caseId: caseId, state: "loading" };
    return api("GET", "/api/agent/cases/" + caseId + "/records").then(function (body) {
      if (ticket !== recordsTicket) return;
      records = { caseId: caseId, state: body.known ? "ok" : "unknown", data: body };
      renderRecords();
    }).catch(function (e) {
      if (ticket !== recordsTicket || e.status === 401) return;
      records = { caseId: caseId, state: e.code === "records_unavailable" ? "unavailable" : "error", error: e };
      renderRecords();
    });
  }

  function dayIn(iso, tz) {
    var ms = Date.parse(iso);
    if (!iso || isNaN(ms)) return "—";
    try {
      return new Intl.DateTimeFormat("en-CA", { timeZone: tz, year: "numeric", month: "2-digit", day: "2-digit" }).format(ms);
    } catch (e) { return absTime(iso).slice(0, 10); }
  }

  function recordsBlock() {
    return el("div", { "class": "ctx-block records", id: "ctx-records-block" }, [
      el("div", { "class": "label records-head" }, [
        el("span", { text: t("records.title") }),
        el("button", { type: "button", "class": "btn ghost records-refresh", testid: "ctx-records-refresh",
                       text: t("records.refresh"), onclick: function () { if (current) loadRecords(current.case_id, false); } })
      ]),
      recordsBody()
    ]);
  }

  function renderRecords() {
    var block = $("ctx-records-block");
    if (!block || !current || !records || records.caseId !== current.case_id) return;
    var old = block.querySelector("[data-testid=ctx-records]");
    block.replaceChild(recordsBody(), old);
  }

  function recordsBody() {
    var r = current && records && records.caseId === current.case_id ? records : { state: "loading" };
    var box = el("div", { "class": "ctx-records", testid: "ctx-records", "data-state": r.state });
    if (r.state === "loading") {
      box.appendChild(el("div", { "class": "muted small-text", text: t("records.loading") }));
      return box;
    }
    if (r.state === "unavailable" || r.state === "error") {
      box.appendChild(el("div", { "class": "warn-box", testid: "ctx-records-unavailable",
        text: r.state === "unavailable" ? t("records.unavailable") : errorText(r.error) }));
      return box;
    }
    if (r.state === "unknown") {
      box.appendChild(el("div", { "class": "muted small-text", testid: "ctx-records-unknown", text: t("records.unknown") }));
      return box;
    }
    var d = r.data, tz = d.timezone, cur = d.currency;
    var rem = d.reminders || {};
    box.appendChild(el("div", { "class": "records-reminders small-text", testid: "ctx-reminders",
      "data-enabled": String(!!rem.enabled),
      text: rem.enabled ? fmt(t("records.reminders_on"), { days: rem.days_before }) : t("records.reminders_off") }));
    var loans = d.loans || [];
    if (!loans.length) box.appendChild(el("div", { "class": "muted small-text", testid: "ctx-no-loans", text: t("records.no_loans") }));
    var open = loans.filter(function (l) { return l.status === "open"; });
    var repaid = loans.filter(function (l) { return l.status !== "open"; });
    open.forEach(function (l) { box.appendChild(loanCard(l, tz, cur)); });
    if (repaid.length) {
      box.appendChild(el("details", { "class": "repaid-loans", testid: "ctx-repaid-loans" }, [
        el("summary", { text: fmt(t("records.repaid_loans"), { n: repaid.length }) })
      ].concat(repaid.map(function (l) { return loanCard(l, tz, cur); }))));
    }
    if (d.loans_total > loans.length) {
      box.appendChild(el("div", { "class": "muted small-text", text: fmt(t("records.more_loans"), { shown: loans.length, total: d.loans_total }) }));
    }
    var reps = d.repayments || [];
    box.appendChild(el("div", { "class": "records-sub", text: d.repayments_total > reps.length
      ? fmt(t("records.repayments_some"), { shown: reps.length, total: d.repayments_total }) : t("records.repayments") }));
    box.appendChild(reps.length ? el("ol", { "class": "repayments", testid: "ctx-repayments" }, reps.map(function (p) {
      var what = typeof p.instalment_number === "number" ? fmt(t("records.instalment"), { number: p.instalment_number }) : t("records.early");
      var status = p.status === "posted" ? t("records.repayment_status.posted")
        : p.delayed ? t("records.repayment_status.delayed")
        : p.expected_post_at ? fmt(t("records.repayment_status.posting"), { at: absTime(p.expected_post_at) })
        : t("records.repayment_status.posting_plain");
      return el("li", { testid: "ctx-repayment", "data-status": p.status }, [
        el("span", null, [fmt(t("records.repayment_line"), { day: dayIn(p.paid_at, tz), amount: money(p.amount, cur), what: what }),
                          " ", el("span", { "class": "muted mono", text: p.loan_id })]),
        el("span", { "class": "tag " + (p.status === "posted" ? "ok" : "pending"), text: status })
      ]);
    })) : el("div", { "class": "muted small-text", testid: "ctx-no-repayments", text: t("records.no_repayments") }));
    box.appendChild(el("div", { "class": "muted small-text records-tz", text: fmt(t("records.dates_in"), { tz: tz }) }));
    return box;
  }

  function loanCard(l, tz, cur) {
    var rows = (l.instalments || []).map(function (i) {
      var status = fmt(t("records.status." + (i.status === "paid" && i.days_late ? "paid_late" : i.status)),
                       { day: dayIn(i.paid_at, tz), days: i.days_late });
      return el("tr", { testid: "ctx-instalment", "data-number": String(i.number), "data-status": i.status,
                        "class": i.status }, [
        el("td", { text: String(i.number) }),
        el("td", { text: dayIn(i.due_date, tz) }),
        el("td", { "class": "num", text: money(i.amount, cur) }),
        el("td", { testid: "ctx-instalment-status", text: status })
      ]);
    });
    return el("div", { "class": "loan", testid: "ctx-loan", "data-loan": l.loan_id, "data-status": l.status }, [
      el("div", { "class": "loan-head" }, [
        el("strong", { text: fmt(t("records.loan_head"), { principal: money(l.principal, cur) }) }),
        el("span", { "class": "tag " + (l.status === "open" ? "appealable" : "ok"), text: t("records.loan_status." + l.status) }),
        el("span", { "class": "muted small-text mono", text: l.loan_id })
      ]),
      el("div", { "class": "small-text", testid: "ctx-loan-progress", text: fmt(t("records.progress"), {
        paid: l.instalments_paid, total: l.instalments_total, remaining: money(l.remaining_to_repay, cur),
        opened: dayIn(l.opened_at, tz) }) }),
      el("table", { "class": "schedule", testid: "ctx-schedule" }, [
        el("thead", null, [el("tr", null, [
          el("th", { scope: "col", text: t("records.col.number") }), el("th", { scope: "col", text: t("records.col.due") }),
          el("th", { scope: "col", text: t("records.col.amount") }), el("th", { scope: "col", text: t("records.col.status") })
        ])]),
        el("tbody", null, rows)
      ])
    ]);
  }

  // ---------- notes ----------
  function renderNotes() {
    var list = $("notes");
    list.innerHTML = "";
    (current.notes || []).forEach(function (n) {
      list.appendChild(el("li", { "class": "note", testid: "note" }, [
        el("div", { "class": "meta", text: (n.agent || "") + " · " + absTime(n.at) }),
        el("div", { "class": "body", text: n.text })
      ]));
    });
  }
  /** The trimmed text of the field `input` for the open case, or null: nothing to send, or the
   *  case is not ours (then `notMine` is shown). */
  function textToSend(input, notMine) {
    var text = input.value.trim();
    if (!text || !current) return null;
    if (!isMine()) { showAlert(notMine, "error"); return null; }
    return text;
  }
  function onNote(ev) {
    ev.preventDefault();
    var input = $("note-input");
    var text = textToSend(input, t("notes_locked"));
    if (text === null) return;
    var id = current.case_id;
    api("POST", "/api/agent/cases/" + id + "/notes", { text: text }).then(function (n) {
      input.value = "";
      if (current && current.case_id === id) {
        current.notes = (current.notes || []).concat([{ id: n.id, text: n.text, at: new Date().toISOString(), agent: session.agent.name }]);
        renderNotes();
      }
      toast(t("note_added"), "ok");
    }).catch(function (e) {
      if (e.status === 401) return;
      toast(e.status === 403 || e.code === "not_your_case" ? t("error.not_your_case") : errorText(e), "error");
      if (e.status === 403 || e.status === 409) reloadCase(false);
    });
  }

  // ---------- reply ----------
  function onReply(ev) {
    ev.preventDefault();
    var input = $("reply");
    var text = textToSend(input, t("claim_first"));
    if (text === null) return;
    $("reply-send").disabled = true;
    api("POST", "/api/agent/cases/" + current.case_id + "/messages", { text: text }).then(function (m) {
      input.value = "";
      appendMessage(m);
    }).catch(function (e) {
      if (e.status === 401) return;
      toast(fmt(t("send_failed"), { msg: e.status === 403 ? t("error.not_your_case") : errorText(e) }), "error");
      if (e.status === 409 || e.status === 403) reloadCase(false);
    }).then(function () { if (current) { $("reply-send").disabled = !isMine(); input.focus(); } });
  }

  // ---------- return / close ----------
  function onReturn(ev) {
    ev.preventDefault();
    var note = $("return-note").value.trim();
    var id = current.case_id;
    var button = document.querySelector("[data-testid=return-confirm]");
    button.disabled = true;
    api("POST", "/api/agent/cases/" + id + "/return", note ? { note: note } : {}).then(function () {
      $("return-note").value = "";
      $("return-form").hidden = true;
      return reloadCase(false).then(function () { showAlert(t("returned_ok"), "info"); loadQueue(); });
    }).catch(function (e) {
      if (e.status !== 401) toast(e.status === 403 ? t("error.not_your_case") : errorText(e), "error");
      reloadCase(false);
    }).then(function () { button.disabled = false; });
  }
  var closeConfirmTimer = null;
  /** Back from "confirm close?" to the plain "close" button. */
  function cancelCloseConfirm() {
    clearTimeout(closeConfirmTimer);
    closeConfirmTimer = null;
    var b = $("close-btn");
    if (!b.hasAttribute("data-confirm")) return;
    b.removeAttribute("data-confirm");
    b.setAttribute("data-i18n", "close_case");
    b.textContent = t("close_case");
    if ($("case-alert").textContent === t("close_confirm_hint")) showAlert(null);
  }
  function onClose() {
    var b = $("close-btn");
    if (b.getAttribute("data-confirm") !== String(current.case_id)) {
      // ending the conversation cannot be undone: the first click asks, the second closes
      // (the question belongs to this case: another case starts from the plain button)
      b.setAttribute("data-confirm", String(current.case_id));
      b.setAttribute("data-i18n", "close_confirm");
      b.textContent = t("close_confirm");
      showAlert(t("close_confirm_hint"), "info");
      clearTimeout(closeConfirmTimer);
      closeConfirmTimer = setTimeout(cancelCloseConfirm, 8000);  // not confirmed: as before
      return;
    }
    clearTimeout(closeConfirmTimer);
    closeConfirmTimer = null;
    b.removeAttribute("data-confirm");
    b.setAttribute("data-i18n", "close_case");
    b.textContent = t("close_case");
    var id = current.case_id;
    api("POST", "/api/agent/cases/" + id + "/close").then(function () {
      return reloadCase(false).then(function () { showAlert(t("closed_ok"), "info"); loadQueue(); });
    }).catch(function (e) { if (e.status !== 401) toast(e.status === 403 ? t("error.not_your_case") : errorText(e), "error"); });
  }

  // ---------- canned replies ----------
  function loadCanned() {
    return api("GET", "/api/agent/canned").then(function (body) {
      canned = body.replies || [];
      renderCanned();
    }).catch(function () { /* toast via api */ });
  }
  function cannedText(r) {
    var l = current && String(current.language).slice(0, 2) === "en" ? "en" : "zh";
    return l === "en" ? r.text_en : r.text_zh;
  }
  function renderCanned() {
    var list = $("canned-list");
    var sup = isSupervisor();
    list.innerHTML = "";
    canned.forEach(function (r) {
      // inserting is for everyone; editing and deleting for supervisors (the desk enforces it)
      var del = !sup ? null : confirmingDelete === r.id
        ? el("button", { type: "button", "class": "btn danger-ghost small", testid: "canned-delete-confirm", text: t("confirm_del"),
                         onclick: function () { deleteCanned(r.id); } })
        : el("button", { type: "button", "class": "btn ghost small", testid: "canned-delete", text: t("delete"),
                         onclick: function () { confirmingDelete = r.id; renderCanned(); } });
      list.appendChild(el("li", { "class": "canned-item", testid: "canned-item", "data-id": r.id, "data-title": r.title }, [
        el("div", { "class": "text" }, [
          el("div", { "class": "title", text: r.title }),
          el("div", { "class": "preview", testid: "canned-preview", text: cannedText(r) })
        ]),
        el("div", { "class": "ops" }, [
          el("button", { type: "button", "class": "btn small insert", testid: "canned-insert", text: t("insert"),
                         onclick: function () { insertCanned(r); } }),
          sup ? el("button", { type: "button", "class": "btn ghost small", testid: "canned-edit", text: t("edit"),
                               onclick: function () { editCanned(r); } }) : null,
          del
        ])
      ]));
    });
  }
  function insertCanned(r) {
    var input = $("reply");
    var text = cannedText(r);
    if (input.disabled) { showAlert(t("claim_first"), "error"); return; }
    var start = input.selectionStart || input.value.length;
    var end = input.selectionEnd || input.value.length;
    var before = input.value.slice(0, start);
    var sep = before && !/\s$/.test(before) ? " " : "";
    input.value = before + sep + text + input.value.slice(end);
    input.focus();
    var pos = (before + sep + text).length;
    input.setSelectionRange(pos, pos);
  }
  function editCanned(r) {
    if (!isSupervisor()) { toast(t("canned_forbidden"), "error"); return; }
    editingCanned = r ? r.id : "new";
    $("canned-form").hidden = false;
    $("canned-title").value = r ? r.title : "";
    $("canned-zh").value = r ? r.text_zh : "";
    $("canned-en").value = r ? r.text_en : "";
    $("canned-title").focus();
  }
  function onCannedSave(ev) {
    ev.preventDefault();
    var body = { title: $("canned-title").value.trim(), text_zh: $("canned-zh").value.trim(), text_en: $("canned-en").value.trim() };
    var req = editingCanned === "new" ? api("POST", "/api/agent/canned", body)
      : api("PUT", "/api/agent/canned/" + editingCanned, body);
    req.then(function () {
      $("canned-form").hidden = true;
      editingCanned = null;
      toast(t("saved"), "ok");
      return loadCanned();
    }).catch(cannedFailed);
  }
  function cannedFailed(e) {
    if (e.status === 401) return;
    if (e.status === 403) {
      // the desk says we are not a supervisor (any more): hide what we cannot use
      if (session && session.agent) { session.agent.role = "agent"; storeSession(); }
      applyRole();
      renderCanned();
      toast(t("canned_forbidden"), "error");
      return;
    }
    toast(errorText(e), "error");
  }
  function deleteCanned(id) {
    api("DELETE", "/api/agent/canned/" + id).then(function () {
      confirmingDelete = null;
      toast(t("deleted"), "ok");
      return loadCanned();
    }).catch(cannedFailed);
  }

  // ---------- lookup ----------
  function onLookup(ev) {
    if (ev) ev.preventDefault();
    var id = $("lookup-input").value.trim();
    if (!id && !isSupervisor()) {  // listing everybody's conversations is for supervisors
      toast(t("lookup_need_id"), "error");
      $("lookup-input").focus();
      return;
    }
    var url = "/api/agent/conversations" + (id ? "?borrower_id=" + encodeURIComponent(id) : "");
    api("GET", url).then(function (body) {
      var list = $("lookup-results");
      list.innerHTML = "";
      var rows = body.conversations || [];
      $("lookup-empty").hidden = rows.length > 0;
      rows.forEach(function (c) {
        var open = queue.filter(function (q) { return q.conversation_id === c.conversation_id; })[0];
        // the desk lets an agent do this only with the case claimed by them; supervisors also
        // without a case
        var canRunCheck = open ? open.status === "claimed" && open.claimed_by === session.agent.name
          : isSupervisor();
        list.appendChild(el("li", { "class": "conv-item", testid: "conversation-item",
                                    "data-conversation-id": c.conversation_id, "data-owner": c.owner }, [
          el("div", { "class": "row1" }, [
            el("strong", { text: c.borrower_id }),
            el("span", { "class": "muted small-text", title: absTime(c.updated_at), text: t("updated") + " " + relTime(c.updated_at) })
          ]),
          el("div", { "class": "row2" }, [
            el("span", { "class": "tag " + (c.owner === "agent" ? "appealable" : "ok"), testid: "conversation-owner", text: has("owner." + c.owner) ? t("owner." + c.owner) : c.owner }),
            el("span", { "class": "tag lang", text: langName(c.locale) }),
            el("span", { "class": "muted mono", text: c.conversation_id })
          ]),
          el("div", { "class": "actions" }, [
            canRunCheck ? el("button", { type: "button", "class": "btn small", testid: "run-check", text: t("run_check"),
                                         onclick: function (e) { runCheck(c.conversation_id, e.currentTarget); } }) : null,
            open ? el("button", { type: "button", "class": "btn ghost small", testid: "open-case", text: t("open_case"),
                                  onclick: function () { openCase(open.case_id); } }) : null
          ])
        ]));
      });
    }).catch(function (e) { if (e.status !== 401) toast(errorText(e), "error"); });
  }
  function runCheck(conversationId, button) {
    button.disabled = true;
    api("POST", "/api/agent/conversations/" + encodeURIComponent(conversationId) + "/run-check").then(function () {
      toast(t("run_check_ok"), "ok");
      loadQueue();
      onLookup(null);
      if (current && current.conversation_id === conversationId) reloadCase(false);
    }).catch(function (e) {
      button.disabled = false;
      if (e.status === 401) return;
      toast(e.status === 409 ? t("run_check_not_yours")
        : e.status === 403 ? t("run_check_forbidden") : errorText(e), "error");
    });
  }

  // ---------- wiring ----------
  function switchTab(name) {
    document.querySelectorAll(".tab").forEach(function (b) { b.classList.toggle("active", b.getAttribute("data-tab") === name); });
    $("panel-queue").hidden = name !== "queue";
    $("panel-lookup").hidden = name !== "lookup";
    if (name === "lookup") $("lookup-input").focus();
  }
  document.querySelectorAll(".tab").forEach(function (b) {
    b.addEventListener("click", function () { switchTab(b.getAttribute("data-tab")); });
  });
  document.querySelectorAll("[data-ui-lang]").forEach(function (b) {
    b.addEventListener("click", function () {
      var before = uiLang;
      uiLang = b.getAttribute("data-ui-lang");
      save(LANG_KEY, uiLang);
      applyText();
      // the case's alert too: one with fields from its key and values, else when it is a
      // whole text of the catalog (one without fields)
      var alertKey = Relend.keyOf(before, $("case-alert").textContent);
      if ($("case-alert").hidden) { /* nothing shown */ }
      else if (alertRender) $("case-alert").textContent = alertRender();
      else if (alertKey) $("case-alert").textContent = t(alertKey);
      if (session && !$("workspace").hidden) {
        applyRole();
        renderQueue();
        if (current) { renderCaseHead(); renderContext(); renderCanned(); redrawTranscript(); }
      }
    });
  });
  $("login-form").addEventListener("submit", onLogin);
  $("logout").addEventListener("click", logout);
  $("claim-btn").addEventListener("click", function () { if (current) claim(current.case_id); });
  $("return-btn").addEventListener("click", function () { $("return-form").hidden = false; $("return-note").focus(); });
  $("return-cancel").addEventListener("click", function () { $("return-form").hidden = true; });
  $("return-form").addEventListener("submit", onReturn);
  $("close-btn").addEventListener("click", onClose);
  $("reply-form").addEventListener("submit", onReply);
  $("reply").addEventListener("keydown", function (ev) {
    if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing && ev.keyCode !== 229) {
      ev.preventDefault();
      $("reply-form").requestSubmit();
    }
  });
  $("note-form").addEventListener("submit", onNote);
  $("canned-toggle").addEventListener("click", function () {
    $("canned").hidden = !$("canned").hidden;
    renderCanned();
    if (!$("canned").hidden) loadCanned();  // another agent may have changed the list
  });
  $("canned-close").addEventListener("click", function () { $("canned").hidden = true; });
  $("canned-add").addEventListener("click", function () { editCanned(null); });
  // timers sleep in background tabs: catch up on the token when the tab is back
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState !== "visible" || !session) return;
    if (needsRefresh(session)) refreshAccess().catch(function () { /* */ });
    if (!stopped && !socket) { wsAttempts = 0; connectSocket(); }
  });
  $("canned-cancel").addEventListener("click", function () { $("canned-form").hidden = true; editingCanned = null; });
  $("canned-form").addEventListener("submit", onCannedSave);
  $("lookup-form").addEventListener("submit", onLookup);

  Relend.boot("console", Relend.languagesOf("data-ui-lang"), function () {
    uiLang = Relend.languageFor(uiLang);
    if (session && session.token) startWorkspace();
  else { wipeSessionStorage(); showLogin(null); }
  });
})();
