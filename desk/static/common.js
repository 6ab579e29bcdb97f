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

  return {
    $: $, el: el, load: load, save: save, wipe: wipe, openSocket: openSocket,
    fmt: fmt, has: has, text: text, list: list, applyTexts: applyTexts,
    boot: boot, languagesOf: languagesOf, languageFor: languageFor
  };
})();
