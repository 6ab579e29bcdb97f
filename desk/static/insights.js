/* Relend insights page (/console/insights): the lender's figures for a period, for
 * supervisors (docs/insights.md). Reads GET /api/agent/insights?from=&to= with the console's
 * session (sessionStorage, this tab: sign in on /console first), draws charts with Chart.js
 * (vendored, /static/vendor/) and shows every figure as a table too. The messages the bot did
 * not understand come in groups; "Label" files a group's texts as examples of an intent for
 * review (POST /api/agent/insights/label). The CSV export is fetched with the token (a plain
 * link could not send it) and saved from a blob, byte for byte.
 *
 * Words come from the catalog (page.insights.*); an API error shows error.<code>.
 */
(function () {
  "use strict";

  var $ = Relend.$, el = Relend.el;
  var SESSION_KEY = "relend.console.session";   // the console's (console.js)
  var LANG_KEY = "relend.console.lang";
  var COLORS = ["#1f5fd6", "#0f8a6a", "#e0a43b", "#c53030", "#7b5cd6", "#2f9fc0", "#8a94a6",
                "#d65c9a", "#5c8a1f", "#4a5568"];
  var lang = "zh";
  var session = null;
  var figures = null;
  var charts = {};

  function t(key) { return Relend.text(lang, key); }

  // ---------- the desk's API ----------
  function call(method, path, body, asBlob) {
    var attempt = function () {
      var init = { method: method, headers: { "Authorization": "Bearer " + session.token } };
      if (body !== undefined) {
        init.headers["Content-Type"] = "application/json";
        init.body = JSON.stringify(body);
      }
      return fetch(path, init);
    };
    return attempt().then(function (r) {
      if (r.status !== 401) return r;
      return refresh().then(attempt);
    }).then(function (r) {
      if (r.ok) return asBlob ? r.blob() : r.json();  // a blob: the bytes as sent (BOM, CRLF)
      return r.json().catch(function () { return {}; }).then(function (b) {
        var err = new Error("HTTP " + r.status);
        err.status = r.status;
        err.code = (b && b.error && b.error.code) || (r.status === 422 ? "invalid_request" : "network");
        throw err;
      });
    });
  }

  /** A new access token with the console's refresh token; the console's session is kept. */
  function refresh() {
    if (!session.refresh_token) return Promise.reject(gateError("login"));
    return fetch("/api/agent/refresh", { method: "POST",
      headers: { "Authorization": "Bearer " + session.refresh_token } }).then(function (r) {
      if (!r.ok) throw gateError("login");
      return r.json();
    }).then(function (b) {
      session.token = b.token;
      if (b.refresh_token) session.refresh_token = b.refresh_token;
      if (b.expires_in) session.expires_at = Date.now() + b.expires_in * 1000;
      Relend.save(SESSION_KEY, session, sessionStorage);
    });
  }

  function gateError(code) { var e = new Error(code); e.gate = code; return e; }

  function showGate(code) {
    $("insights").hidden = true;
    $("gate").hidden = false;
    $("gate").setAttribute("data-reason", code);
    $("gate-text").textContent = t("gate." + code);
  }

  function showError(err) {
    if (err && err.gate) { showGate(err.gate); return; }
    if (err && err.status === 403) { showGate("supervisor"); return; }
    var code = err && err.code;
    $("error").textContent = Relend.has(lang, "error." + code) ? t("error." + code) : t("error.network");
    $("error").hidden = false;
  }

  // ---------- the period ----------
  function isoDay(d) { return d.toISOString().slice(0, 10); }

  function defaultPeriod() {
    var to = new Date();
    var from = new Date(to.getTime() - 6 * 86400000);
    $("from").value = isoDay(from);
    $("to").value = isoDay(to);
  }

  function query() {
    return "from=" + encodeURIComponent($("from").value) + "&to=" + encodeURIComponent($("to").value);
  }

  function load() {
    $("error").hidden = true;
    $("status").textContent = t("loading");
    return call("GET", "/api/agent/insights?" + query()).then(function (body) {
      figures = body;
      $("status").textContent = "";
      render();
    }, function (err) {
      $("status").textContent = "";
      showError(err);
    });
  }

  function exportCsv() {
    $("error").hidden = true;
    call("GET", "/api/agent/insights.csv?" + query(), undefined, true).then(function (blob) {
      var link = el("a", { href: URL.createObjectURL(blob),
        download: "relend-insights-" + $("from").value + "-" + $("to").value + ".csv" });
      document.body.appendChild(link);
      link.click();
      link.remove();
      setTimeout(function () { URL.revokeObjectURL(link.href); }, 10000);
    }, showError);
  }

  // ---------- figures ----------
  function percent(share) { return (Math.round(share * 1000) / 10).toFixed(1) + "%"; }

  /** A code in words, from the console's one table (the API sends page.console.code.* and
   *  .reason.* for the codes of the figures, in `labels`); a code without words shows as it
   *  is, in the cell's title too. */
  function named(kind, code) {
    var words = figures && figures.labels && figures.labels[lang] && figures.labels[lang][kind];
    if (words && words[code]) return words[code];
    return kind === "code" && code === "unknown" ? t("appeals.unknown_reason") : code;
  }
  function codeCell(kind, code) { return { text: named(kind, code), title: code, code: code }; }

  /** Rows of cells: a value, or {text, title, code} (a code in words, the code kept). */
  function table(id, headers, rows) {
    var node = $(id);
    node.textContent = "";
    node.appendChild(el("thead", null, [el("tr", null, headers.map(function (h) {
      return el("th", { scope: "col", text: h });
    }))]));
    node.appendChild(el("tbody", null, rows.length ? rows.map(function (r) {
      return el("tr", null, r.map(function (c) {
        if (c && typeof c === "object") return el("td", { text: c.text, title: c.title, "data-code": c.code });
        return el("td", { text: String(c) });
      }));
    }) : [el("tr", null, [el("td", { colspan: String(headers.length), text: t("none") })])]));
  }
  function hours(h) { return h === null || h === undefined ? "—" : Relend.fmt(t("appeals.hours"), { h: h }); }

  function chart(id, type, labels, datasets, extra) {
    if (charts[id]) charts[id].destroy();
    var options = { animation: false, responsive: true, maintainAspectRatio: false,
      plugins: { legend: { display: datasets.length > 1 || type === "doughnut" } } };
    if (type !== "doughnut") options.scales = { y: { beginAtZero: true, ticks: { precision: 0 } } };
    Object.keys(extra || {}).forEach(function (k) { options[k] = extra[k]; });
    charts[id] = new Chart($(id), { type: type, data: { labels: labels, datasets: datasets }, options: options });
    $(id).setAttribute("data-rendered", String(labels.length));
  }

  function render() {
    var f = figures;
    $("insights").hidden = false;
    $("tracker-missing").hidden = !!f.tracker_available;
    $("sum-questions").textContent = String(f.questions);
    $("sum-conversations").textContent = String(f.conversations.total);
    $("sum-resolved").textContent = f.conversations.resolved_by_bot + " · " + percent(f.conversations.resolved_share);
    $("sum-handed").textContent = String(f.conversations.handed_off);
    $("sum-missed").textContent = String(f.not_understood.messages);
    $("sum-appeals").textContent = String(f.appeals.filed);

    var days = f.questions_per_day;
    chart("chart-questions", "bar", days.map(function (d) { return d.day; }),
      [{ label: t("col.questions"), data: days.map(function (d) { return d.questions; }), backgroundColor: COLORS[0] }]);
    table("table-questions", [t("col.day"), t("col.questions")], days.map(function (d) { return [d.day, d.questions]; }));

    var reasons = f.blocked.reasons;
    chart("chart-blocked", "bar", reasons.map(function (r) { return named("code", r.code); }), [
      { label: t("col.conversations"), data: reasons.map(function (r) { return r.conversations; }), backgroundColor: COLORS[0] },
      { label: t("col.appealed"), data: reasons.map(function (r) { return r.appealed; }), backgroundColor: COLORS[2] },
      { label: t("col.handed_off"), data: reasons.map(function (r) { return r.handed_off; }), backgroundColor: COLORS[3] }
    ]);
    table("table-blocked", [t("col.reason_code"), t("col.conversations"), t("col.share"), t("col.appealed"),
      t("col.handed_off")],
      reasons.map(function (r) { return [codeCell("code", r.code), r.conversations, percent(r.share), r.appealed, r.handed_off]; }));

    var handoffs = f.handoff_reasons;
    var resolved = [{ reason: "resolved_by_bot", cases: f.conversations.resolved_by_bot }];
    var slices = resolved.concat(handoffs);
    chart("chart-handoffs", "doughnut", slices.map(function (r) {
      return r.reason === "resolved_by_bot" ? t("resolved_by_bot") : named("reason", r.reason);
    }), [{ data: slices.map(function (r) { return r.cases; }), backgroundColor: COLORS.slice(1).concat(COLORS) }]);
    table("table-handoffs", [t("col.handoff_reason"), t("col.cases"), t("col.share")],
      handoffs.map(function (r) { return [codeCell("reason", r.reason), r.cases, percent(r.share)]; }));

    renderAppeals(f.appeals);

    var buckets = f.confidence;
    var bucketName = function (b) { return b.from.toFixed(1) + "–" + b.to.toFixed(1); };
    chart("chart-confidence", "bar", buckets.map(bucketName),
      [{ label: t("col.messages"), data: buckets.map(function (b) { return b.messages; }), backgroundColor: COLORS[1] }]);
    table("table-confidence", [t("col.confidence"), t("col.messages")], buckets.map(function (b) { return [bucketName(b), b.messages]; }));

    renderGroups(f.not_understood.groups, f.label_intents || []);
  }

  /** Appeals filed in the period by reason: what became of them (stacked: upheld, rejected,
   *  pending) and the hours from filing to decision (median, 90th percentile). */
  function renderAppeals(a) {
    var rows = a.reasons;
    var names = rows.map(function (r) { return named("code", r.code); });
    chart("chart-appeals", "bar", names, [
      { label: t("appeals.col.upheld"), data: rows.map(function (r) { return r.upheld; }), backgroundColor: COLORS[1] },
      { label: t("appeals.col.rejected"), data: rows.map(function (r) { return r.rejected; }), backgroundColor: COLORS[3] },
      { label: t("appeals.col.pending"), data: rows.map(function (r) { return r.pending; }), backgroundColor: COLORS[6] }
    ], { scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } } });
    var timed = rows.filter(function (r) { return r.median_hours !== null; });
    chart("chart-appeal-hours", "bar", timed.map(function (r) { return named("code", r.code); }), [
      { label: t("appeals.col.median_hours"), data: timed.map(function (r) { return r.median_hours; }), backgroundColor: COLORS[0] },
      { label: t("appeals.col.p90_hours"), data: timed.map(function (r) { return r.p90_hours; }), backgroundColor: COLORS[2] }
    ], { scales: { y: { beginAtZero: true, title: { display: true, text: t("appeals.hours_axis") } } } });
    var body = rows.map(function (r) {
      return [codeCell("code", r.code), r.filed, r.upheld, r.rejected, r.pending, hours(r.median_hours), hours(r.p90_hours)];
    });
    if (rows.length) {
      body.push([{ text: t("appeals.all"), title: "", code: "all" }, a.filed, a.upheld, a.rejected, a.pending,
                 hours(a.median_hours), hours(a.p90_hours)]);
    }
    table("table-appeals", [t("appeals.col.reason"), t("appeals.col.filed"), t("appeals.col.upheld"), t("appeals.col.rejected"), t("appeals.col.pending"),
      t("appeals.col.median_hours"), t("appeals.col.p90_hours")], body);
  }

  function renderGroups(groups, intents) {
    var list = $("groups");
    list.textContent = "";
    $("missed-empty").hidden = groups.length > 0;
    groups.forEach(function (g) {
      var select = el("select", { testid: "label-intent", "aria-label": t("label_intent") },
        [el("option", { value: "", text: t("choose_intent") })].concat(intents.map(function (name) {
          return el("option", { value: name, text: name });
        })));
      var result = el("span", { "class": "label-result", testid: "label-result", role: "status" });
      var button = el("button", { type: "button", "class": "btn small", testid: "label-button", text: t("label") });
      button.addEventListener("click", function () {
        if (!select.value) { result.textContent = t("choose_intent_first"); return; }
        button.disabled = true;
        call("POST", "/api/agent/insights/label", {
          intent: select.value, texts: g.texts.map(function (x) { return x.text; }).slice(0, 50)
        }).then(function (b) {
          result.textContent = Relend.fmt(t("label_done"), { intent: b.intent, added: b.added.length,
            already: b.already.length, other: b.other_intent.length });
          result.setAttribute("data-added", String(b.added.length));
        }, function (err) {
          if (err && (err.gate || err.status === 403)) { showError(err); return; }
          result.textContent = Relend.has(lang, "error." + err.code) ? t("error." + err.code) : t("error.network");
        }).then(function () { button.disabled = false; });
      });
      var kinds = Object.keys(g.kinds).map(function (k) { return t("kind." + k) + " " + g.kinds[k]; }).join(" · ");
      list.appendChild(el("li", { "class": "group", testid: "missed-group", "data-group": g.id }, [
        el("div", { "class": "group-head" }, [
          el("strong", { text: Relend.fmt(t("group_size"), { n: g.messages }) }),
          el("span", { "class": "muted", text: kinds })
        ]),
        el("ul", { "class": "group-texts" }, g.texts.map(function (x) {
          return el("li", { testid: "missed-text" }, [el("span", { text: x.text }),
            x.count > 1 ? el("span", { "class": "count", text: "×" + x.count }) : null]);
        })),
        el("div", { "class": "group-label" }, [select, button, result])
      ]));
    });
  }

  // ---------- start ----------
  function setLang(code) {
    lang = code;
    Relend.save(LANG_KEY, code);
    Relend.applyTexts(lang);
    document.querySelectorAll("[data-ui-lang]").forEach(function (b) {
      b.classList.toggle("active", b.getAttribute("data-ui-lang") === lang);
    });
    if (!$("gate").hidden) $("gate-text").textContent = t("gate." + $("gate").getAttribute("data-reason"));
    if (figures) render();
  }

  function start() {
    var saved = Relend.load(LANG_KEY, "zh");
    setLang(saved === "en" ? "en" : "zh");
    document.querySelectorAll("[data-ui-lang]").forEach(function (b) {
      b.addEventListener("click", function () { setLang(b.getAttribute("data-ui-lang")); });
    });
    session = Relend.load(SESSION_KEY, null, sessionStorage);
    if (!session || !session.token) { showGate("login"); return; }
    if (!session.agent || session.agent.role !== "supervisor") { showGate("supervisor"); return; }
    defaultPeriod();
    $("period-form").addEventListener("submit", function (e) { e.preventDefault(); load(); });
    $("export").addEventListener("click", exportCsv);
    load();
  }

  Relend.boot("insights", ["zh", "en"], start);
})();
