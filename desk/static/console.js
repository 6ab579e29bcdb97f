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
 */
(function () {
  "use strict";

  var KEY_PREFIX = "relend.console.";
  var SESSION_KEY = KEY_PREFIX + "session";
  var LANG_KEY = KEY_PREFIX + "lang";        // a preference, not part of the session: kept
  var WS_PROTOCOL = "relend.v1";
  var DEFAULT_TTL_S = 900;

  var TEXT = {
    zh: {
      consoleTitle: "客服工作台", logout: "退出", loginTitle: "客服登录",
      loginHint: "演示账号：agent1（主管）/ agent2（客服），密码 relend-demo", username: "用户名", password: "密码",
      login: "登录", badLogin: "用户名或密码错误。", sessionExpired: "登录已过期，请重新登录。",
      tooManyAttempts: "登录失败次数过多，为保护账号已暂时锁定，请 {wait}后再试。",
      tooManyAttemptsNoWait: "登录失败次数过多，为保护账号已暂时锁定，请稍后再试。",
      seconds: "{n} 秒", minutes: "{n} 分钟", loginUnavailable: "暂时无法登录，请稍后重试。",
      role_supervisor: "主管", role_agent: "客服",
      caseForbidden: "该会话已由 {who} 接手，只有接手的客服或主管可以查看详情。",
      caseForbiddenAnon: "您没有权限查看该会话的详情（只有接手的客服或主管可以查看）。",
      cannedForbidden: "只有主管可以新增、编辑或删除快捷回复。",
      claimToAct: "请先接手该会话，再进行此操作。", notesLocked: "接手该会话后才能添加备注。",
      runCheckForbidden: "没有权限交给助手查询：没有工单的会话只有主管可以操作。",
      runCheckNotYours: "该会话有待处理的工单，需要由您接手后才能交给助手查询。",
      lookupNeedId: "请输入用户 ID 再查找。",
      queue: "待处理", lookup: "查找用户", queueEmpty: "队列已清空，暂无等待中的会话",
      lookupPlaceholder: "输入用户 ID，例如 demo-risk-review", search: "查找",
      lookupNone: "没有找到该用户的会话", pickCase: "从左侧队列选择一个会话开始处理",
      claim: "接手", returnToBot: "交还助手", closeCase: "结束会话",
      returnNoteLabel: "给助手的备注（可选，会展示给用户，例如“身份信息已更新”）",
      returnNotePlaceholder: "例如：已人工核实，请重新查询", returnConfirm: "确认交还", cancel: "取消",
      cannedReplies: "快捷回复", add: "新增", save: "保存", edit: "编辑", del: "删除", confirmDel: "确认删除",
      insert: "插入", cannedTitle: "标题", cannedZh: "中文内容", cannedEn: "English text",
      replyPlaceholder: "回复用户…（Enter 发送，Shift+Enter 换行）", send: "发送",
      context: "会话上下文", noCase: "未选择会话", notes: "内部备注", notesHint: "仅客服可见，用户看不到。",
      notePlaceholder: "记录处理情况…", addNote: "添加备注",
      waitingSince: "等待", waiting: "等待中", claimed: "处理中", returned: "已交还助手", closed: "已结束",
      claimedByMe: "由我处理", claimedBy: "{name} 处理中",
      alreadyClaimed: "该会话已被其他客服{who}接手，无法重复接手。",
      claimFirst: "请先接手该会话再回复。", claimedOk: "已接手，用户会看到您的回复。",
      returnedOk: "已交还助手，助手会继续回答用户。", closedOk: "会话已结束。",
      borrowerId: "用户 ID", language: "语言", handoffReason: "转人工原因", conversation: "会话 ID",
      since: "开始等待", topics: "话题", decision: "资格判定", eligible: "可借", notEligible: "不可借",
      available: "可用额度", total: "总额度", checkedAt: "查询时间", decisionId: "判定编号",
      reasons: "原因", blocking: "阻断", appealable: "可申诉", appealIds: "申诉编号",
      unfiled: "未提交的申诉说明", backendFailed: "转人工前资格系统查询失败，上述结果可能不是最新的。",
      botTranscript: "转人工时助手记录（{n} 条）", none: "无", noDecision: "助手尚未查询资格",
      retryAfter: "预计恢复", nextReview: "下次复核",
      borrowerLabel: "用户", botLabel: "助手", agentLabel: "人工客服", quickReply: "快捷按钮",
      owner_bot: "助手处理中", owner_agent: "人工处理中", runCheck: "交给助手查询资格",
      runCheckOk: "已交给助手，助手正在为用户重新查询资格。", openCase: "打开会话", updated: "更新于",
      zh: "中文", en: "英文", live: "实时", reconnecting: "重新连接中…",
      reasonsMap: {
        borrower_asked: "用户要求转人工", offered_by_bot: "助手建议转人工并经用户同意",
        backend_unavailable: "资格系统不可用", assistant_unavailable: "助手无响应",
        repeated_misunderstanding: "助手多次未理解", appeal_failed: "申诉提交失败"
      },
      justNow: "刚刚", minAgo: "{m} 分钟前", hourAgo: "{h} 小时 {m} 分钟前", dayAgo: "{d} 天前",
      sendFailed: "发送失败：{msg}", ended: "会话{status}，无法继续回复。", deleted: "已删除",
      saved: "已保存", noteAdded: "备注已添加", yes: "是", no: "否"
    },
    en: {
      consoleTitle: "Agent console", logout: "Sign out", loginTitle: "Agent sign-in",
      loginHint: "Demo accounts: agent1 (supervisor) / agent2 (agent), password relend-demo", username: "Username",
      password: "Password", login: "Sign in", badLogin: "Wrong username or password.",
      sessionExpired: "Your session expired. Please sign in again.",
      tooManyAttempts: "Too many failed sign-in attempts. Sign-in is paused to protect the account; please try again in {wait}.",
      tooManyAttemptsNoWait: "Too many failed sign-in attempts. Sign-in is paused to protect the account; please try again later.",
      seconds: "{n} s", minutes: "{n} min", loginUnavailable: "Sign-in is unavailable right now. Please try again.",
      role_supervisor: "Supervisor", role_agent: "Agent",
      caseForbidden: "{who} has claimed this conversation; only they or a supervisor can open it.",
      caseForbiddenAnon: "You can't open this conversation: only the agent who claimed it or a supervisor can.",
      cannedForbidden: "Only supervisors can add, edit or delete canned replies.",
      claimToAct: "Claim the conversation first.", notesLocked: "Claim the conversation to add notes.",
      runCheckForbidden: "You can't hand this conversation to the bot: without a case, only a supervisor can.",
      runCheckNotYours: "This conversation has an open case: claim it yourself before handing it to the bot.",
      lookupNeedId: "Enter a borrower id to search.",
      queue: "Queue", lookup: "Borrower lookup", queueEmpty: "All clear: nobody is waiting",
      lookupPlaceholder: "Borrower id, e.g. demo-risk-review", search: "Search",
      lookupNone: "No conversations for this borrower", pickCase: "Pick a conversation from the queue",
      claim: "Claim", returnToBot: "Return to bot", closeCase: "Close",
      returnNoteLabel: "Note for the assistant (optional, shown to the borrower, e.g. \"ID details updated\")",
      returnNotePlaceholder: "e.g. verified manually, please check again", returnConfirm: "Return",
      cancel: "Cancel", cannedReplies: "Canned replies", add: "Add", save: "Save", edit: "Edit",
      del: "Delete", confirmDel: "Confirm delete", insert: "Insert", cannedTitle: "Title",
      cannedZh: "Chinese text", cannedEn: "English text",
      replyPlaceholder: "Reply to the borrower… (Enter to send, Shift+Enter for a new line)", send: "Send",
      context: "Context", noCase: "No conversation selected", notes: "Internal notes",
      notesHint: "Visible to agents only, never to the borrower.", notePlaceholder: "What you did…",
      addNote: "Add note", waitingSince: "Waiting", waiting: "Waiting", claimed: "In progress",
      returned: "Returned to bot", closed: "Closed", claimedByMe: "Yours", claimedBy: "{name} has it",
      alreadyClaimed: "Another agent{who} has already claimed this conversation.",
      claimFirst: "Claim the conversation before replying.",
      claimedOk: "Claimed. The borrower will see your replies.",
      returnedOk: "Returned to the assistant; it answers the borrower again.",
      closedOk: "Conversation closed.", borrowerId: "Borrower", language: "Language",
      handoffReason: "Handoff reason", conversation: "Conversation", since: "Waiting since",
      topics: "Topics", decision: "Decision", eligible: "Eligible", notEligible: "Not eligible",
      available: "Available", total: "Total limit", checkedAt: "Checked", decisionId: "Decision id",
      reasons: "Reasons", blocking: "blocking", appealable: "appealable", appealIds: "Appeals",
      unfiled: "Unfiled appeal statement",
      backendFailed: "The eligibility service failed before the handoff; the decision may be stale.",
      botTranscript: "Assistant's transcript at handoff ({n} lines)", none: "none",
      noDecision: "The assistant had not checked eligibility", retryAfter: "Retry after",
      nextReview: "Next review", borrowerLabel: "Borrower", botLabel: "Assistant",
      agentLabel: "Agent", quickReply: "button", owner_bot: "with the bot",
      owner_agent: "with an agent", runCheck: "Hand to bot to run the eligibility check",
      runCheckOk: "Handed to the assistant; it is checking eligibility again.", openCase: "Open",
      updated: "updated", zh: "Chinese", en: "English", live: "Live", reconnecting: "Reconnecting…",
      reasonsMap: {
        borrower_asked: "Borrower asked for a person", offered_by_bot: "Bot offered a person, borrower agreed",
        backend_unavailable: "Eligibility service unavailable", assistant_unavailable: "Assistant not responding",
        repeated_misunderstanding: "Bot did not understand repeatedly", appeal_failed: "Appeal could not be filed"
      },
      justNow: "just now", minAgo: "{m} min ago", hourAgo: "{h} h {m} min ago", dayAgo: "{d} d ago",
      sendFailed: "Could not send: {msg}", ended: "This conversation is {status}; replies are closed.",
      deleted: "Deleted", saved: "Saved", noteAdded: "Note added", yes: "yes", no: "no"
    }
  };

  // ---------- helpers ----------
  function $(id) { return document.getElementById(id); }
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        var v = attrs[k];
        if (v === null || v === undefined || v === false) return;
        if (k === "text") node.textContent = v;
        else if (k === "class") node.className = v;
        else if (k === "testid") node.setAttribute("data-testid", v);
        else if (k.slice(0, 2) === "on") node.addEventListener(k.slice(2), v);
        else node.setAttribute(k, v === true ? "" : v);
      });
    }
    (children || []).forEach(function (c) {
      if (c === null || c === undefined || c === false) return;
      node.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    });
    return node;
  }
  function load(key, fallback, store) {
    try { var raw = (store || localStorage).getItem(key); return raw ? JSON.parse(raw) : fallback; }
    catch (e) { return fallback; }
  }
  function save(key, value, store) {
    try { (store || localStorage).setItem(key, JSON.stringify(value)); } catch (e) { /* */ }
  }
  /** Remove every key this page stored about a session, in both storages (the UI language
   *  preference stays). Also removes what earlier versions kept in localStorage. */
  function wipeSessionStorage() {
    [window.localStorage, window.sessionStorage].forEach(function (store) {
      try {
        var doomed = [];
        for (var i = 0; i < store.length; i++) {
          var k = store.key(i);
          if (k && k.indexOf(KEY_PREFIX) === 0 && k !== LANG_KEY) doomed.push(k);
        }
        doomed.forEach(function (k) { store.removeItem(k); });
      } catch (e) { /* storage disabled */ }
    });
  }
  function fmt(s, f) { return String(s).replace(/\{(\w+)\}/g, function (_, k) { return f[k] !== undefined ? f[k] : ""; }); }
  function t(key) { return TEXT[uiLang][key]; }

  function relTime(iso) {
    var then = new Date(iso).getTime();
    if (isNaN(then)) return "";
    var mins = Math.floor(Math.max(0, Date.now() - then) / 60000);
    if (mins < 1) return t("justNow");
    if (mins < 60) return fmt(t("minAgo"), { m: mins });
    if (mins < 60 * 24) return fmt(t("hourAgo"), { h: Math.floor(mins / 60), m: mins % 60 });
    return fmt(t("dayAgo"), { d: Math.floor(mins / 1440) });
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
  function langName(code) { return t(String(code || "").slice(0, 2) === "en" ? "en" : "zh"); }
  function reasonLabel(code) { return t("reasonsMap")[code] || code || "—"; }

  // ---------- state ----------
  var uiLang = load(LANG_KEY, "zh") === "en" ? "en" : "zh";
  try { localStorage.removeItem(SESSION_KEY); } catch (e) { /* an older version kept it here */ }
  // {token, refresh_token, expires_at (ms), ttl (s), agent: {id, name, role}}
  var session = load(SESSION_KEY, null, sessionStorage);
  if (session && (!session.token || !session.agent)) session = null;
  var queue = [];
  var current = null;                      // case detail
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
    var e = new Error(t("sessionExpired"));
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
          if (e2.status === 401 && s === session) { signOut(t("sessionExpired")); throw expiredError(); }
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
    if (!s.refresh_token) { signOut(t("sessionExpired")); return Promise.reject(expiredError()); }
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
        signOut(t("sessionExpired"));
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
    document.documentElement.lang = uiLang === "en" ? "en" : "zh-CN";
    document.title = uiLang === "en" ? "Relend agent console" : "Relend 客服工作台";
    document.querySelectorAll("[data-i18n]").forEach(function (n) { n.textContent = t(n.getAttribute("data-i18n")); });
    document.querySelectorAll("[data-i18n-placeholder]").forEach(function (n) {
      n.setAttribute("placeholder", t(n.getAttribute("data-i18n-placeholder")));
    });
    document.querySelectorAll("[data-ui-lang]").forEach(function (b) {
      b.classList.toggle("active", b.getAttribute("data-ui-lang") === uiLang);
    });
    $("queue-count").textContent = String(queue.length);
    refreshLive();
  }

  // ---------- login ----------
  function showLogin(message) {
    $("login-view").hidden = false;
    $("workspace").hidden = true;
    $("me").hidden = true;
    $("me-role").hidden = true;
    $("logout").hidden = true;
    $("live").hidden = true;
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
        showLoginError(wait ? fmt(t("tooManyAttempts"), { wait: waitText(wait) }) : t("tooManyAttemptsNoWait"),
                       "too_many_attempts");
        if (wait) {  // trying again before then only extends the lock: wait with the button
          submit.disabled = true;
          clearTimeout(loginUnlockTimer);
          loginUnlockTimer = setTimeout(function () { submit.disabled = false; }, Math.min(wait, 3600) * 1000);
        }
      } else if (e.status === 401) {
        showLoginError(t("badLogin"), "bad_credentials");
      } else {
        showLoginError(e.status ? e.message : t("loginUnavailable"), e.code || "error");
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
    $("context").appendChild(el("div", { "class": "muted small-text", "data-i18n": "noCase", text: t("noCase") }));
    ["reply", "note-input", "lookup-input", "return-note", "canned-title", "canned-zh", "canned-en"].forEach(function (id) {
      $(id).value = "";
    });
    $("queue-count").textContent = "0";
    $("case").hidden = true;
    $("case-forbidden").hidden = true;
    $("case-placeholder").hidden = false;
    $("notes-panel").hidden = true;
    $("canned").hidden = true;
    $("canned-form").hidden = true;
    $("lookup-empty").hidden = true;
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
    $("workspace").hidden = false;
    $("me").hidden = false;
    $("logout").hidden = false;
    $("live").hidden = false;
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
      toast(e.message, "error");
      loadQueue();
      loadCanned();
      connectSocket();
    });
  }

  function applyRole() {
    var sup = isSupervisor();
    $("me-role").hidden = !session;
    $("me-role").textContent = session ? t(sup ? "role_supervisor" : "role_agent") : "";
    $("me-role").setAttribute("data-role", sup ? "supervisor" : "agent");
    $("canned-add").hidden = !sup;
    if (!sup) { $("canned-form").hidden = true; editingCanned = null; confirmingDelete = null; }
  }

  // ---------- live updates ----------
  function connectSocket() {
    clearTimeout(wsTimer);
    if (stopped || !session) return;
    var proto = location.protocol === "https:" ? "wss:" : "ws:";
    var ws;
    try {
      // always the current access token; it goes in the subprotocol list, never in the URL
      ws = new WebSocket(proto + "//" + location.host + "/ws/agent", [WS_PROTOCOL, "auth." + session.token]);
    } catch (e) {
      if (e && e.name === "SyntaxError") { signOut(t("sessionExpired")); return; }  // unusable token
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
    };
    ws.onclose = function (ev) {
      if (ws !== socket) return;
      socket = null;
      refreshLive();
      if (stopped) return;
      if (ev.code === 4401) {
        // the access token ran out (or was revoked): refresh once and reconnect; if the desk
        // refuses again right away, or refuses the refresh, back to the login form
        if (Date.now() - lastSocketRefresh < 30000) { signOut(t("sessionExpired")); return; }
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
    }).catch(function (e) { if (e.status !== 401) toast(e.message, "error"); });
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
        text: mine ? t("claimedByMe") : fmt(t("claimedBy"), { name: c.claimed_by || "?" })
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
          c.primary_reason ? el("span", { "class": "tag code", testid: "queue-primary-reason", text: c.primary_reason }) : null,
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
      // claimed by someone else meanwhile: the detail may no longer be ours to see
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
        if (current && current.case_id === caseId) { showAlert(t("claimedOk"), "ok"); $("reply").focus(); }
      });
    }).catch(function (e) {
      if (e.status === 409) {
        // someone was faster: show who (a supervisor still sees the case; others get the
        // "not yours" panel, which names the claimer from the queue)
        return loadQueue().then(function () { return openCase(caseId); }).then(function () {
          if (!current || current.case_id !== caseId) return;
          var name = current.claimed_by || claimerFromQueue(caseId);
          var who = name ? (uiLang === "en" ? " (" + name + ")" : "（" + name + "）") : "";
          showAlert(fmt(t("alreadyClaimed"), { who: who }), "error");
        });
      }
      if (e.status === 401) return;
      toast(e.message, "error");
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
      current = detail;
      if (switching) {
        $("case-alert").hidden = true;
        $("return-form").hidden = true;
        $("reply").value = "";
      }
      renderCase(true);
      renderQueue();
    }).catch(function (e) {
      if (ticket !== opening) return;
      if (e.status === 403) { showCaseForbidden(caseId); return; }
      if (e.status !== 401) toast(e.message, "error");
    });
  }

  function reloadCase(full) {
    if (!current) return Promise.resolve();
    var id = current.case_id;
    return api("GET", "/api/agent/cases/" + id).then(function (detail) {
      if (!current || current.case_id !== id) return;
      current = detail;
      if (full) renderCase(true);
      else {
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
    $("case").hidden = true;
    $("case-placeholder").hidden = true;
    $("transcript").innerHTML = "";
    $("notes").innerHTML = "";
    $("notes-panel").hidden = true;
    $("canned").hidden = true;
    var ctx = $("context");
    ctx.innerHTML = "";
    ctx.appendChild(el("div", { "class": "muted small-text", "data-i18n": "noCase", text: t("noCase") }));
    var name = claimerFromQueue(caseId);
    var box = $("case-forbidden");
    box.hidden = false;
    box.setAttribute("data-case-id", String(caseId));
    box.textContent = name ? fmt(t("caseForbidden"), { who: name }) : t("caseForbiddenAnon");
    renderQueue();
  }

  function isMine() {
    return current && current.status === "claimed" && current.claimed_by === session.agent.name;
  }
  function isOpen() { return current && (current.status === "waiting" || current.status === "claimed"); }

  function renderCase() {
    $("case-placeholder").hidden = true;
    $("case-forbidden").hidden = true;
    $("case").hidden = false;
    $("notes-panel").hidden = false;
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
    status.textContent = c.status === "claimed" ? (isMine() ? t("claimedByMe") : fmt(t("claimedBy"), { name: c.claimed_by })) : t(c.status);
    $("case-sub").textContent = "#" + c.case_id + " · " + langName(c.language) + " · " + reasonLabel(c.reason) +
      " · " + t("waitingSince") + " " + relTime(c.waiting_since);
    var mine = isMine();
    $("claim-btn").hidden = !isOpen() || mine;
    $("claim-btn").className = "btn " + (c.status === "waiting" ? "primary" : "");
    $("return-btn").hidden = !mine;
    $("close-btn").hidden = !mine;
    if (!mine) $("return-form").hidden = true;
    $("reply").disabled = !mine;
    $("reply-send").disabled = !mine;
    $("reply-form").classList.toggle("disabled", !mine);
    $("reply-hint").textContent = mine ? (uiLang === "en" ? "Replying in " : "回复语言：") + langName(c.language)
      : isOpen() ? t("claimFirst") : fmt(t("ended"), { status: t(c.status) });
    $("canned-lang").textContent = "· " + langName(c.language);
    // notes are written by the case's claimer only
    $("note-input").disabled = !mine;
    document.querySelector("[data-testid=note-add]").disabled = !mine;
    $("note-form").classList.toggle("disabled", !mine);
    $("notes-locked").hidden = mine;
  }

  function showAlert(text, kind) {
    var a = $("case-alert");
    a.hidden = !text;
    a.textContent = text || "";
    a.className = "case-alert" + (kind && kind !== "error" ? " " + kind : "");
    a.setAttribute("data-kind", kind || "error");
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
      var label = m.sender === "borrower" ? t("borrowerLabel") : m.sender === "bot" ? t("botLabel")
        : t("agentLabel") + (m.agent_name ? " · " + m.agent_name : "");
      var text = m.text;
      var viaButton = m.sender === "borrower" && text && text.charAt(0) === "/" && payloadTitles[text];
      node = el("div", { "class": "t-row " + m.sender + (ours ? " ours" : ""), testid: "t-message",
                         "data-sender": m.sender, "data-id": m.id }, [
        el("div", { "class": "t-msg" }, [
          el("div", { "class": "t-label" }, [el("span", { text: label }), el("span", { text: absTime(m.at).slice(11) })]),
          el("div", { "class": "t-bubble", testid: "t-text", text: viaButton ? payloadTitles[text] : text }),
          viaButton ? el("div", { "class": "t-label" }, [el("span", { "class": "mono", text: t("quickReply") + " " + text })]) : null,
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

  function onLiveMessage(m) {
    if (!m || typeof m.id !== "number") return;
    liveBuffer.push(m);
    if (liveBuffer.length > 100) liveBuffer = liveBuffer.slice(-100);
    if (current && m.conversation_id === current.conversation_id) appendMessage(m);
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

  function detailValue(v) {
    if (v === null || v === undefined) return "—";
    if (typeof v === "boolean") return v ? t("yes") : t("no");
    if (typeof v === "number") return String(v);
    if (typeof v === "string") return /^\d{4}-\d\d-\d\dT/.test(v) ? absTime(v) : v;
    if (Array.isArray(v)) {
      return v.map(function (x) { return typeof x === "object" && x ? (x.code || x.factor || JSON.stringify(x)) : String(x); }).join(", ");
    }
    return Object.keys(v).map(function (k) { return k + "=" + detailValue(v[k]); }).join(", ");
  }

  function renderContext() {
    var c = current;
    var ctx = c.context || {};
    var box = $("context");
    box.innerHTML = "";
    if (ctx.backend_failed) box.appendChild(el("div", { "class": "warn-box", testid: "ctx-backend-failed", text: t("backendFailed") }));
    box.appendChild(kv([
      [t("borrowerId"), el("span", { "class": "mono", text: c.borrower_id }), "ctx-borrower-id"],
      [t("language"), langName(c.language), "ctx-language"],
      [t("handoffReason"), reasonLabel(c.reason), "ctx-reason"],
      [t("since"), absTime(c.waiting_since), "ctx-since"],
      [t("conversation"), el("span", { "class": "mono", text: c.conversation_id }), "ctx-conversation"]
    ]));

    var topics = ctx.topics || [];
    box.appendChild(el("div", { "class": "ctx-block" }, [
      el("div", { "class": "label", text: t("topics") }),
      el("div", { "class": "chips", testid: "ctx-topics" }, topics.length ? topics.map(function (x) {
        return el("span", { "class": "tag topic", text: x });
      }) : [el("span", { "class": "muted small-text", text: t("none") })])
    ]));

    var d = ctx.decision;
    var dBlock = el("div", { "class": "ctx-block" }, [el("div", { "class": "label", text: t("decision") })]);
    if (d && typeof d === "object") {
      var card = el("div", { "class": "decision", testid: "ctx-decision" }, [
        el("div", { "class": "head" }, [
          el("span", { "class": "tag " + (d.eligible ? "ok" : "bad"), testid: "ctx-eligible",
                       "data-eligible": String(!!d.eligible), text: d.eligible ? t("eligible") : t("notEligible") }),
          el("span", { "class": "muted small-text", title: d.decision_id || "", text: d.checked_at ? t("checkedAt") + " " + absTime(d.checked_at) : "" })
        ]),
        el("div", { "class": "limits" }, [
          el("div", null, [el("div", { "class": "num", testid: "ctx-available", text: money(d.available_limit, d.currency) }),
                           el("div", { "class": "cap", text: t("available") })]),
          el("div", null, [el("div", { "class": "num", testid: "ctx-total", text: money(d.total_limit, d.currency) }),
                           el("div", { "class": "cap", text: t("total") })])
        ])
      ]);
      (d.reasons || []).forEach(function (r) {
        var details = r.details || {};
        var items = Object.keys(details).map(function (k) {
          return el("li", null, [el("span", { "class": "k", text: k }), el("span", { "class": "v", text: detailValue(details[k]) })]);
        });
        if (r.retry_after) items.push(el("li", null, [el("span", { "class": "k", text: t("retryAfter") }), el("span", { "class": "v", text: absTime(r.retry_after) })]));
        if (r.next_review_at) items.push(el("li", null, [el("span", { "class": "k", text: t("nextReview") }), el("span", { "class": "v", text: absTime(r.next_review_at) })]));
        card.appendChild(el("div", { "class": "reason", testid: "ctx-reason-code", "data-code": r.code }, [
          el("div", { "class": "code-line" }, [
            el("span", { "class": "code", text: r.code }),
            r.blocking ? el("span", { "class": "tag blocking", text: t("blocking") }) : null,
            r.appealable ? el("span", { "class": "tag appealable", text: t("appealable") }) : null
          ]),
          items.length ? el("ul", { "class": "details", testid: "ctx-reason-details" }, items) : null
        ]));
      });
      if (d.decision_id) card.appendChild(el("div", { "class": "muted small-text decision-id" }, [t("decisionId") + " ", el("span", { "class": "mono", text: d.decision_id })]));
      dBlock.appendChild(card);
    } else {
      dBlock.appendChild(el("div", { "class": "muted small-text", testid: "ctx-decision", text: t("noDecision") }));
    }
    box.appendChild(dBlock);

    var appeals = ctx.appeal_ids || [];
    box.appendChild(el("div", { "class": "ctx-block" }, [
      el("div", { "class": "label", text: t("appealIds") }),
      el("div", { "class": "chips", testid: "ctx-appeal-ids" }, appeals.length ? appeals.map(function (x) {
        return el("span", { "class": "tag appeal", testid: "ctx-appeal-id", text: x });
      }) : [el("span", { "class": "muted small-text", text: t("none") })])
    ]));

    if (ctx.unfiled_appeal_statement) {
      box.appendChild(el("div", { "class": "ctx-block" }, [
        el("div", { "class": "label", text: t("unfiled") }),
        el("div", { "class": "statement", testid: "ctx-unfiled-statement", text: ctx.unfiled_appeal_statement })
      ]));
    }
    var tr = ctx.transcript || [];
    if (tr.length) {
      box.appendChild(el("details", { "class": "bot-transcript", testid: "ctx-transcript" }, [
        el("summary", { text: fmt(t("botTranscript"), { n: tr.length }) }),
        el("ol", null, tr.map(function (line) {
          return el("li", null, [el("strong", { text: (line.sender === "borrower" ? t("borrowerLabel") : t("botLabel")) + "：" }), line.text || ""]);
        }))
      ]));
    }
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
  function onNote(ev) {
    ev.preventDefault();
    var input = $("note-input");
    var text = input.value.trim();
    if (!text || !current) return;
    if (!isMine()) { showAlert(t("notesLocked"), "error"); return; }
    var id = current.case_id;
    api("POST", "/api/agent/cases/" + id + "/notes", { text: text }).then(function (n) {
      input.value = "";
      if (current && current.case_id === id) {
        current.notes = (current.notes || []).concat([{ id: n.id, text: n.text, at: new Date().toISOString(), agent: session.agent.name }]);
        renderNotes();
      }
      toast(t("noteAdded"), "ok");
    }).catch(function (e) {
      if (e.status === 401) return;
      toast(e.status === 403 || e.code === "not_your_case" ? t("claimToAct") : e.message, "error");
      if (e.status === 403 || e.status === 409) reloadCase(false);
    });
  }

  // ---------- reply ----------
  function onReply(ev) {
    ev.preventDefault();
    var input = $("reply");
    var text = input.value.trim();
    if (!text || !current) return;
    if (!isMine()) { showAlert(t("claimFirst"), "error"); return; }
    $("reply-send").disabled = true;
    api("POST", "/api/agent/cases/" + current.case_id + "/messages", { text: text }).then(function (m) {
      input.value = "";
      appendMessage(m);
    }).catch(function (e) {
      if (e.status === 401) return;
      toast(fmt(t("sendFailed"), { msg: e.status === 403 ? t("claimToAct") : e.message }), "error");
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
      return reloadCase(false).then(function () { showAlert(t("returnedOk"), "info"); loadQueue(); });
    }).catch(function (e) {
      if (e.status !== 401) toast(e.status === 403 ? t("claimToAct") : e.message, "error");
      reloadCase(false);
    }).then(function () { button.disabled = false; });
  }
  function onClose() {
    var id = current.case_id;
    api("POST", "/api/agent/cases/" + id + "/close").then(function () {
      return reloadCase(false).then(function () { showAlert(t("closedOk"), "info"); loadQueue(); });
    }).catch(function (e) { if (e.status !== 401) toast(e.status === 403 ? t("claimToAct") : e.message, "error"); });
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
        ? el("button", { type: "button", "class": "btn danger-ghost small", testid: "canned-delete-confirm", text: t("confirmDel"),
                         onclick: function () { deleteCanned(r.id); } })
        : el("button", { type: "button", "class": "btn ghost small", testid: "canned-delete", text: t("del"),
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
    if (input.disabled) { showAlert(t("claimFirst"), "error"); return; }
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
    if (!isSupervisor()) { toast(t("cannedForbidden"), "error"); return; }
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
      toast(t("cannedForbidden"), "error");
      return;
    }
    toast(e.message, "error");
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
      toast(t("lookupNeedId"), "error");
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
            el("span", { "class": "tag " + (c.owner === "agent" ? "appealable" : "ok"), testid: "conversation-owner", text: t("owner_" + c.owner) || c.owner }),
            el("span", { "class": "tag lang", text: langName(c.locale) }),
            el("span", { "class": "muted mono", text: c.conversation_id })
          ]),
          el("div", { "class": "actions" }, [
            canRunCheck ? el("button", { type: "button", "class": "btn small", testid: "run-check", text: t("runCheck"),
                                         onclick: function (e) { runCheck(c.conversation_id, e.currentTarget); } }) : null,
            open ? el("button", { type: "button", "class": "btn ghost small", testid: "open-case", text: t("openCase"),
                                  onclick: function () { openCase(open.case_id); } }) : null
          ])
        ]));
      });
    }).catch(function (e) { if (e.status !== 401) toast(e.message, "error"); });
  }
  function runCheck(conversationId, button) {
    button.disabled = true;
    api("POST", "/api/agent/conversations/" + encodeURIComponent(conversationId) + "/run-check").then(function () {
      toast(t("runCheckOk"), "ok");
      loadQueue();
      onLookup(null);
      if (current && current.conversation_id === conversationId) reloadCase(false);
    }).catch(function (e) {
      button.disabled = false;
      if (e.status === 401) return;
      toast(e.status === 409 ? t("runCheckNotYours")
        : e.status === 403 ? t("runCheckForbidden") : e.message, "error");
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
      uiLang = b.getAttribute("data-ui-lang");
      save(LANG_KEY, uiLang);
      applyText();
      if (session && !$("workspace").hidden) {
        applyRole();
        renderQueue();
        if (current) { renderCaseHead(); renderContext(); renderCanned(); }
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

  if (session && session.token) startWorkspace();
  else { wipeSessionStorage(); showLogin(null); }
})();
