/* Relend pages: what the in-app chat (chat.js) and the agent console (console.js) share.
 * Plain JS, no dependencies; each page loads this file first, then its own script.
 *
 * Texts: every word a page shows comes from the text catalog (texts/<lang>.yml, keys
 * page.<page>.*), which the desk serves as GET /texts/<lang>.json (the page.* keys without
 * "page."). A page starts with Relend.boot(page, languages, start): the texts of every language
 * it offers are loaded first (a language switch is then instant), and `start` runs only once
 * they are there. Without them the page cannot say anything, so it says so in the one notice
 * that is written into the HTML (#texts-failed) and stops.
 *   - text(lang, key): the text; fmt(template, {name: value}) fills its {name} fields;
 *   - has(lang, key): whether the catalog has it (keys built from codes: "reason." + code);
 *   - list(lang, key): numbered texts key.1, key.2, ... as an array (the catalog holds only
 *     strings);
 *   - applyTexts(lang): elements marked data-i18n (text), data-i18n-placeholder and
 *     data-i18n-title (title and aria-label) get their texts; the document its title (key
 *     "title") and lang.
 * The pages run under a strict CSP: no inline scripts or style attributes here.
 */
var Relend = (function () {
  "use strict";

  var WS_PROTOCOL = "relend.v1";
  var DEFAULT_LANG = "zh";
  var HTML_LANG = { zh: "zh-CN" };            // the document's lang attribute, when not the code
  var FETCH_ATTEMPTS = 3;
  var texts = {};                              // lang -> {key without "<page>.": text}

  // ---------- DOM ----------
  function $(id) { return document.getElementById(id); }

  /** el("div", {"class": "x", testid: "y", text: "z", onclick: f}, [child, "text", null]) */
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

  // ---------- the desk's sockets ----------
  /** A WebSocket to the desk's `path`; the token goes in the subprotocol list ("relend.v1",
   *  "auth.<token>"), never in the URL (logs, proxies, history). Throws a SyntaxError when the
   *  token is not even a valid subprotocol. */
  function openSocket(path, token) {
    var proto = location.protocol === "https:" ? "wss:" : "ws:";
    return new WebSocket(proto + "//" + location.host + path, [WS_PROTOCOL, "auth." + token]);
  }

  // ---------- storage ----------
  /** A JSON value from localStorage (or `store`), or `fallback`. */
  function load(key, fallback, store) {
    try {
      var raw = (store || window.localStorage).getItem(key);
      return raw ? JSON.parse(raw) : fallback;
    } catch (e) { return fallback; }
  }
  function save(key, value, store) {
    try { (store || window.localStorage).setItem(key, JSON.stringify(value)); } catch (e) { /* quota: best effort */ }
  }
  /** Remove every key starting with `prefix` from localStorage and sessionStorage, but `keep`. */
  function wipe(prefix, keep) {
    [window.localStorage, window.sessionStorage].forEach(function (store) {
      try {
        var doomed = [];
        for (var i = 0; i < store.length; i++) {
          var k = store.key(i);
          if (k && k.indexOf(prefix) === 0 && k !== keep) doomed.push(k);
        }
        doomed.forEach(function (k) { store.removeItem(k); });
      } catch (e) { /* storage disabled: nothing was stored */ }
    });
  }

  // ---------- texts ----------
  function fmt(template, fields) {
    return String(template).replace(/\{(\w+)\}/g, function (_, k) {
      return fields[k] !== undefined && fields[k] !== null ? fields[k] : "";
    });
  }
  function catalogOf(lang) { return texts[lang] || texts[DEFAULT_LANG] || {}; }
  function has(lang, key) { return Object.prototype.hasOwnProperty.call(catalogOf(lang), key); }
  /** The text `key` in `lang`; a key the catalog lacks shows as itself (a test forbids it). */
  function text(lang, key) { return has(lang, key) ? catalogOf(lang)[key] : key; }
  /** The key of the text `value` in `lang` (the first one), or null. */
  function keyOf(lang, value) {
    var all = catalogOf(lang);
    var keys = Object.keys(all);
    for (var i = 0; i < keys.length; i++) if (value && all[keys[i]] === value) return keys[i];
    return null;
  }
  function list(lang, key) {
    var out = [];
    for (var n = 1; has(lang, key + "." + n); n++) out.push(text(lang, key + "." + n));
    return out;
  }
  function applyTexts(lang) {
    document.documentElement.lang = HTML_LANG[lang] || lang;
    document.title = text(lang, "title");
    document.querySelectorAll("[data-i18n]").forEach(function (n) {
      n.textContent = text(lang, n.getAttribute("data-i18n"));
    });
    document.querySelectorAll("[data-i18n-placeholder]").forEach(function (n) {
      n.setAttribute("placeholder", text(lang, n.getAttribute("data-i18n-placeholder")));
    });
    document.querySelectorAll("[data-i18n-title]").forEach(function (n) {
      n.setAttribute("title", text(lang, n.getAttribute("data-i18n-title")));
      n.setAttribute("aria-label", text(lang, n.getAttribute("data-i18n-title")));
    });
  }

  function fetchTexts(page, lang, attemptsLeft) {
    return fetch("/texts/" + encodeURIComponent(lang) + ".json", { credentials: "same-origin" }).then(function (r) {
      if (!r.ok) throw new Error("HTTP " + r.status);
      return r.json();
    }).then(function (all) {
      var mine = {};
      var prefix = page + ".";
      Object.keys(all).forEach(function (k) { if (k.indexOf(prefix) === 0) mine[k.slice(prefix.length)] = all[k]; });
      texts[lang] = mine;
    }).catch(function (e) {
      if (attemptsLeft <= 1) throw e;
      return new Promise(function (resolve) {
        setTimeout(resolve, 500 * (FETCH_ATTEMPTS - attemptsLeft + 1));  // 0.5 s, then 1 s
      }).then(function () { return fetchTexts(page, lang, attemptsLeft - 1); });
    });
  }

  /** Load the page's texts in `langs`, then `start()`; without them, show #texts-failed. */
  function boot(page, langs, start) {
    Promise.all(langs.map(function (l) { return fetchTexts(page, l, FETCH_ATTEMPTS); })).then(function () {
      start();
    }, function () {
      var notice = $("texts-failed");
      if (notice) notice.hidden = false;
    });
  }
  /** The languages a page offers: the codes on its language switch (`attr` = "zh-CN" / "en"). */
  function languagesOf(attr) {
    var seen = {};
    document.querySelectorAll("[" + attr + "]").forEach(function (b) {
      seen[b.getAttribute(attr).slice(0, 2)] = true;
    });
    return Object.keys(seen);
  }
  /** A language with texts for `code` ("en-US" -> "en"), else the default. */
  function languageFor(code) {
    var l = String(code || "").slice(0, 2);
    return texts[l] ? l : DEFAULT_LANG;
  }

  // ---------- ids in a text ----------
  // appeal ids (AP20261130-K7Q2XZ), decision ids, loan and incident ids: never broken across
  // lines (a bubble may break anywhere else)
  var ID_PATTERN = /\b(?:AP\d{8}-[A-Z0-9]+|dec_[0-9a-f]{8,}|LN-[A-Za-z0-9-]+|RP-[A-Za-z0-9-]+|[A-Z]{2,}-INC-\d+)\b/g;
  /** `value` as nodes for el()'s children: the ids in it in a span.nowrap each. */
  function withIds(value) {
    var s = String(value === null || value === undefined ? "" : value);
    var out = [], last = 0, m;
    ID_PATTERN.lastIndex = 0;
    while ((m = ID_PATTERN.exec(s)) !== null) {
      if (m.index > last) out.push(s.slice(last, m.index));
      out.push(el("span", { "class": "nowrap", text: m[0] }));
      last = m.index + m[0].length;
    }
    if (last < s.length) out.push(s.slice(last));
    return out;
  }

  // ---------- the picture of a borrower's situation ----------
  /* One shape (common/situation.py): {type: "relend.situation", version: 1, lang, timezone,
   * now, timeline: {kind, reason, start, end} | null, limit: {total, available, in_use,
   * min_drawdown, currency} | null}. The chat gets it with a bot reply (its "attachment");
   * the console builds it from a case's decision (situationOf). Every moment in it is the
   * decision's, but `now`, where "today" is marked. situationView draws it with the page's
   * texts (visual.*) in `lang`: plain HTML, positions set through the CSSOM (the CSP forbids
   * style attributes), each part with a text alternative (role="img" + aria-label). */
  var SITUATION = "relend.situation";
  // reason code -> [kind, where the window starts, where it ends] ("@x": the reason's own x)
  var WINDOWS = {
    REPAYMENT_POSTING: ["posting", "paid_at", "expected_post_at"],
    OVERDUE_COOLING_OFF: ["cooling_off", "cleared_at", "cooling_off_until"],
    RISK_REVIEW_NOT_PASSED: ["review", "reviewed_at", "@next_review_at"],
    CREDIT_SCORE_DROPPED: ["score", "recorded_at", "@next_review_at"],
    RISK_POLICY_TIGHTENED: ["policy", "effective_from", "effective_until"],
    COMPLIANCE_HOLD: ["hold", "placed_at", "@next_review_at"],
    FUNDING_QUOTA_EXHAUSTED: ["funding", "exhausted_at", "reopens_at"],
    SYSTEM_INCIDENT: ["incident", "started_at", "expected_end_at"]
  };
  var DAY_MS = 86400000;

  function momentOf(value) {
    if (typeof value !== "string" || !/^\d{4}-\d\d-\d\dT\d\d:\d\d/.test(value)) return null;
    var ms = Date.parse(value);
    return isNaN(ms) ? null : ms;
  }
  /** The window of a decision's `reason` (both ends given, start first), or null. */
  function windowOf(reason) {
    var spec = reason && WINDOWS[reason.code];
    if (!spec) return null;
    var field = function (name) {
      if (name.charAt(0) === "@") return reason[name.slice(1)];
      return reason.details ? reason.details[name] : null;
    };
    var start = momentOf(field(spec[1])), end = momentOf(field(spec[2]));
    if (start === null || end === null || end <= start) return null;
    return { kind: spec[0], reason: reason.code, start: field(spec[1]), end: field(spec[2]) };
  }
  /** The limit in use versus available, when some of it is not available; else null. */
  function limitOf(d) {
    var total = d.total_limit, available = d.available_limit;
    if (typeof total !== "number" || typeof available !== "number") return null;
    if (total <= 0 || available < 0 || available >= total) return null;
    return { total: total, available: available, in_use: Math.round((total - available) * 100) / 100,
             min_drawdown: typeof d.min_drawdown === "number" ? d.min_drawdown : null,
             currency: d.currency || "CNY" };
  }
  /** The situation of `decision` as the console shows it: `reason`'s window (or none) and
   *  the limit, "now" being `nowIso`; null when there is nothing to draw. */
  function situationOf(decision, reason, nowIso, lang) {
    if (!decision || typeof decision !== "object") return null;
    var s = { type: SITUATION, version: 1, lang: lang, timezone: decision.timezone || "Asia/Shanghai",
              now: nowIso, timeline: reason === null ? null : windowOf(reason), limit: limitOf(decision) };
    return s.timeline || s.limit ? s : null;
  }

  function zoneOf(tz) {
    try { new Intl.DateTimeFormat("en", { timeZone: tz }); return tz; } catch (e) { return "Asia/Shanghai"; }
  }
  /** A moment as the borrower's time zone shows it: "3月10日 14:00" / "10 Mar, 14:00"; with
   *  its year when that is not the year of `nowMs` ("2027年2月8日" / "8 Feb 2027"). */
  function momentText(ms, lang, tz, withTime, nowMs) {
    var locale = lang === "zh" ? "zh-CN" : "en-GB";
    var year = new Intl.DateTimeFormat("en", { timeZone: tz, year: "numeric" });
    var otherYear = nowMs !== undefined && year.format(ms) !== year.format(nowMs);
    var day = new Intl.DateTimeFormat(locale, { timeZone: tz, month: lang === "zh" ? "long" : "short",
                                                day: "numeric", year: otherYear ? "numeric" : undefined }).format(ms);
    if (!withTime) return day;
    var clock = new Intl.DateTimeFormat("en-GB", { timeZone: tz, hour: "2-digit", minute: "2-digit",
                                                   hourCycle: "h23" }).format(ms);
    return fmt(text(lang, "visual.at"), { day: day, time: clock });
  }
  function sameDay(a, b, tz) {
    var f = new Intl.DateTimeFormat("en-CA", { timeZone: tz, year: "numeric", month: "2-digit", day: "2-digit" });
    return f.format(a) === f.format(b);
  }
  /** An amount as the catalog writes money: "5,000元" / "¥4,583.33". */
  function moneyText(amount, lang) {
    var whole = Math.abs(amount - Math.round(amount)) < 0.005;
    var figure = amount.toLocaleString("en-US", { minimumFractionDigits: whole ? 0 : 2,
                                                  maximumFractionDigits: whole ? 0 : 2 });
    return fmt(text(lang, "visual.money"), { amount: figure });
  }
  /** [title, start label, end label] of a window's kind, in `lang`. */
  function windowTexts(kind, lang) {
    switch (kind) {
      case "posting": return [text(lang, "visual.posting.title"), text(lang, "visual.posting.start"), text(lang, "visual.posting.end")];
      case "cooling_off": return [text(lang, "visual.cooling_off.title"), text(lang, "visual.cooling_off.start"), text(lang, "visual.cooling_off.end")];
      case "review": return [text(lang, "visual.review.title"), text(lang, "visual.review.start"), text(lang, "visual.review.end")];
      case "score": return [text(lang, "visual.score.title"), text(lang, "visual.score.start"), text(lang, "visual.score.end")];
      case "policy": return [text(lang, "visual.policy.title"), text(lang, "visual.policy.start"), text(lang, "visual.policy.end")];
      case "hold": return [text(lang, "visual.hold.title"), text(lang, "visual.hold.start"), text(lang, "visual.hold.end")];
      case "funding": return [text(lang, "visual.funding.title"), text(lang, "visual.funding.start"), text(lang, "visual.funding.end")];
      case "incident": return [text(lang, "visual.incident.title"), text(lang, "visual.incident.start"), text(lang, "visual.incident.end")];
      default: return null;
    }
  }
  function place(node, prop, percent) { node.style[prop] = percent.toFixed(2) + "%"; return node; }

  function timelineView(tl, lang, tz, nowMs) {
    var names = windowTexts(tl.kind, lang);
    var start = momentOf(tl.start), end = momentOf(tl.end);
    if (!names || start === null || end === null || end <= start || nowMs === null) return null;
    var lo = Math.min(start, nowMs), hi = Math.max(end, nowMs);
    var pos = function (ms) { return 4 + 92 * (ms - lo) / (hi - lo); };
    var withTime = hi - lo < 3 * DAY_MS;
    var startText = momentText(start, lang, tz, withTime, nowMs);
    var endText = momentText(end, lang, tz, withTime, nowMs);
    var today = sameDay(nowMs, Date.now(), tz);
    var nowText = momentText(nowMs, lang, tz, withTime);
    var nowLabel = today ? text(lang, "visual.today") : fmt(text(lang, "visual.as_of"), { at: nowText });
    var points = [[start, names[1], startText], [end, names[2], endText],
                  [nowMs, today ? text(lang, "visual.today") : text(lang, "visual.then"), nowText]];
    points.sort(function (a, b) { return a[0] - b[0]; });
    var alt = fmt(text(lang, "visual.timeline_alt"), {
      title: names[0],
      points: points.map(function (p) { return fmt(text(lang, "visual.point"), { label: p[1], at: p[2] }); })
        .join(text(lang, "visual.separator"))
    });
    var passed = Math.min(Math.max(nowMs, start), end);
    var flagAt = pos(nowMs);
    var flag = el("span", { "class": "sit-now-flag", testid: "situation-today", text: nowLabel });
    flag.style.transform = "translateX(-" + flagAt.toFixed(2) + "%)";  // stays inside the track
    return el("div", { "class": "sit-part sit-timeline", role: "img", "aria-label": alt,
                       testid: "situation-timeline", "data-kind": tl.kind, "data-reason": tl.reason,
                       "data-today": today ? "true" : "false" }, [
      el("div", { "class": "sit-title", "aria-hidden": "true", text: names[0] }),
      el("div", { "class": "sit-flag-row", "aria-hidden": "true" }, [place(flag, "left", flagAt)]),
      el("div", { "class": "sit-track", "aria-hidden": "true" }, [
        place(place(el("span", { "class": "sit-window" }), "left", pos(start)), "width", pos(end) - pos(start)),
        place(place(el("span", { "class": "sit-passed" }), "left", pos(start)), "width", pos(passed) - pos(start)),
        place(el("span", { "class": "sit-dot start" }), "left", pos(start)),
        place(el("span", { "class": "sit-dot end" }), "left", pos(end)),
        place(el("span", { "class": "sit-now", testid: "situation-now-mark" }), "left", flagAt)
      ]),
      el("div", { "class": "sit-legend", "aria-hidden": "true" }, [
        el("span", { "class": "sit-end-label start" }, [el("span", { "class": "k", text: names[1] }), el("span", { "class": "v", text: startText })]),
        el("span", { "class": "sit-end-label end" }, [el("span", { "class": "k", text: names[2] }), el("span", { "class": "v", text: endText })])
      ])
    ]);
  }

  function limitView(lim, lang) {
    var inUse = moneyText(lim.in_use, lang), available = moneyText(lim.available, lang);
    var total = moneyText(lim.total, lang);
    // some left, but less than the smallest loan (nothing left says itself)
    var below = typeof lim.min_drawdown === "number" && lim.available > 0 && lim.available < lim.min_drawdown;
    var alt = fmt(text(lang, "visual.limit.alt"), { total: total, in_use: inUse, available: available }) +
      (below ? fmt(text(lang, "visual.limit.below_min"), { min: moneyText(lim.min_drawdown, lang) }) : "");
    var usedPct = Math.max(0, Math.min(100, 100 * lim.in_use / lim.total));
    return el("div", { "class": "sit-part sit-limit", role: "img", "aria-label": alt, testid: "situation-limit" }, [
      el("div", { "class": "sit-title", "aria-hidden": "true" }, [
        el("span", { text: text(lang, "visual.limit.title") }),
        el("span", { "class": "sit-total", text: fmt(text(lang, "visual.limit.total"), { total: total }) })
      ]),
      el("div", { "class": "sit-bar", "aria-hidden": "true" }, [
        place(el("span", { "class": "sit-used" }), "width", usedPct),
        place(el("span", { "class": "sit-free" }), "width", 100 - usedPct)
      ]),
      el("div", { "class": "sit-legend", "aria-hidden": "true" }, [
        el("span", { "class": "sit-key used" }, [el("i"), el("span", { text: fmt(text(lang, "visual.limit.in_use"), { amount: inUse }) })]),
        el("span", { "class": "sit-key free" }, [el("i"), el("span", { text: fmt(text(lang, "visual.limit.available"), { amount: available }) })])
      ]),
      below ? el("div", { "class": "sit-note", "aria-hidden": "true",
                          text: fmt(text(lang, "visual.limit.below_min"), { min: moneyText(lim.min_drawdown, lang) }) }) : null
    ]);
  }

  /** The picture of situation `s` in `lang` (its own lang if not given), or null when it is
   *  not of the known shape or holds nothing to draw. `parts`: "all" (default), "timeline"
   *  or "limit". */
  function situationView(s, lang, parts) {
    if (!s || s.type !== SITUATION || s.version !== 1) return null;
    lang = languageFor(lang || s.lang);
    var tz = zoneOf(s.timezone || "Asia/Shanghai");
    var nowMs = momentOf(s.now);
    var tl = s.timeline && parts !== "limit" ? timelineView(s.timeline, lang, tz, nowMs) : null;
    var lim = s.limit && parts !== "timeline" && typeof s.limit.total === "number" && s.limit.total > 0
      ? limitView(s.limit, lang) : null;
    if (!tl && !lim) return null;
    return el("figure", { "class": "situation", testid: "situation", lang: HTML_LANG[lang] || lang }, [tl, lim]);
  }

  return {
    $: $, el: el, load: load, save: save, wipe: wipe, openSocket: openSocket,
    fmt: fmt, has: has, text: text, list: list, applyTexts: applyTexts,
    boot: boot, languagesOf: languagesOf, languageFor: languageFor,
    situationOf: situationOf, situationView: situationView, withIds: withIds, keyOf: keyOf
  };
})();
