"""The static leaderboard page: one self-contained ``index.html`` per results folder.

Why one file with everything inline: the page must open from ``file://`` and from
any static host with no network, so its CSS, its script, the data and the
efficacy plot (an SVG as a ``data:`` image) are all inside it. Why the data goes in
as JSON and the script builds the DOM with ``textContent``: system names, family
names and notes come from files other people wrote, and text set that way is never
parsed as HTML. A Content-Security-Policy (no network; only this page's own script,
pinned by its hash) stops anything else from running even if a name got through.

What the page shows (see docs/reports.md): the leaderboard (sortable, partial
rows marked), a language x system heatmap per task, the efficacy view (gain over
the baseline by model size, with CIs, and the per-task gains table), and where
every number came from (hover, and the Sources section). One board per benchmark
version found (XTREME, XTREME-R), each with that version's columns, rows and heatmaps;
a switch picks one when the results hold both (a row is never a mix of the two).
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
from datetime import datetime, timezone
from typing import Any, Mapping, Sequence

from harness_ext.reports.board import BENCHMARK_TITLES, PARTIAL_MARK, BoardRow, build_rows, size_text
from harness_ext.reports.rules import SystemScores, category_tasks, is_number
from harness_ext.reports.tables import CATEGORY_TITLES, XTREME_R_CATEGORY_NOTE, Table, by_benchmark, partial_note
from xtreme_tasks.table import DEFAULT_BENCHMARK, TABLE, TASKS, get_benchmark

PAGE_NAME = "index.html"


def _num(value: Any) -> float | None:
    return float(value) if is_number(value) else None


def _columns(benchmark: str = DEFAULT_BENCHMARK) -> list[dict[str, str]]:
    """The board's columns for one benchmark version (its overall score, categories and tasks);
    the overall score's key is ``xtreme`` in both versions."""
    version = get_benchmark(benchmark)
    cols = [{"key": "name", "label": "System", "kind": "text", "group": "id"},
            {"key": "xtreme", "label": version.title, "kind": "num", "group": "score"}]
    cols += [{"key": f"cat:{c}", "label": CATEGORY_TITLES.get(c, c), "kind": "num", "group": "cat"}
             for c in category_tasks(benchmark)]
    cols += [{"key": f"task:{t}", "label": version.spec(t).title, "kind": "num", "group": "task"} for t in version.tasks]
    cols += [{"key": "size", "label": "Size", "kind": "num", "group": "about"},
             {"key": "protocol", "label": "Protocol", "kind": "text", "group": "about"},
             {"key": "benchmark", "label": "Benchmark", "kind": "text", "group": "about"}]
    return cols


def _row(row: BoardRow, system: str) -> dict[str, Any]:
    """One board row as JSON; ``system``: the full system name (the key of an XTREME-R row adds ``@xtreme-r``)."""
    source = row.sources.get("")
    row_source = source.text() if source else "no results file"

    def number(value, task: str | None = None) -> dict[str, Any]:
        src = row.sources.get(task) if task else source
        cell = {"v": _num(value.value), "t": value.text(), "p": value.partial, "src": src.text() if src else row_source}
        if task and row.task_warning(task):
            cell["warn"] = row.task_warning(task)
        return cell

    cells: dict[str, Any] = {
        "name": {"v": None, "t": row.name, "src": f"{system} \u2014 {row_source}"},
        "xtreme": number(row.xtreme),
        "size": {"v": row.size, "t": size_text(row.size), "src": "parameters, from checkpoints.yaml" if row.size else
                 "size unknown (pass --checkpoints with this system's size)"},
        "protocol": {"v": None, "t": row.protocol, "src": row_source},
        "benchmark": {"v": None, "t": BENCHMARK_TITLES.get(row.benchmark, row.benchmark), "src": row_source},
    }
    for category, value in row.categories.items():
        cells[f"cat:{category}"] = number(value)
    for task, value in row.tasks.items():
        cells[f"task:{task}"] = number(value, task)
    return {"key": row.key, "name": row.name, "system": system, "badge": row.badge, "status": row.status,
            "complete": row.complete, "limited": row.limited, "cells": cells,
            "sources": [{"what": "row", "text": row_source}]
            + [{"what": TABLE[t].title, "text": row.sources[t].text()} for t in row.tasks if t in row.sources]}


def _heatmaps(rows: Sequence[BoardRow], benchmark: str = DEFAULT_BENCHMARK,
              full: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """Per task of the version: languages (its scored ones, in its order), extras seen, and, for
    XTREME-R, the languages it added to an XTREME task (``added``, marked on the page)."""
    version = get_benchmark(benchmark)
    out = []
    for task in version.tasks:
        members = [r for r in rows if task in r.languages]
        if not members:
            continue
        spec = version.spec(task)
        extra = [l for l in spec.extra_languages if any(l in r.languages[task] for r in members)]
        added = ([l for l in spec.languages if l not in TASKS[task].languages]
                 if benchmark != DEFAULT_BENCHMARK and task in TASKS else [])
        heat_rows = []
        for row in members:
            cells = {}
            for lang in list(spec.languages) + extra:
                leaf = spec.leaf(lang)
                src = row.leaf_sources.get(leaf)
                cell: dict[str, Any] = {"v": _num(row.languages[task].get(lang)),
                                        "src": src.text() if src else "no result for this language"}
                if leaf in row.warnings:
                    cell["warn"] = row.warnings[leaf]
                cells[lang] = cell
            heat_rows.append({"key": row.key, "name": row.name, "system": (full or {}).get(row.key, row.key),
                              "badge": row.badge, "avg": row.tasks[task].text(),
                              "cells": cells})
        metric = " + ".join(spec.score_metrics)
        out.append({"key": task, "title": spec.title, "languages": list(spec.languages), "extra": extra, "added": added,
                    "metric": f"(EM + F1) / 2" if len(spec.score_metrics) > 1 else metric, "rows": heat_rows})
    return out


def _table(table: Table) -> dict[str, Any]:
    return {"title": table.title, "header": list(table.header),
            "rows": [[{"t": c.text, "v": c.value if isinstance(c.value, (int, float)) and not isinstance(c.value, bool)
                       else None} for c in row] for row in table.rows],
            "notes": list(table.notes)}


def _board(benchmark: str, scores: Mapping[str, SystemScores], systems: Mapping[str, Any] | None,
           sizes: Mapping[str, int] | None) -> dict[str, Any]:
    """One benchmark version's leaderboard and heatmaps, from that version's rows only."""
    version = get_benchmark(benchmark)
    rows = build_rows(scores, systems, sizes)
    notes = []
    if any(v.partial for r in rows for v in [r.xtreme, *r.categories.values(), *r.tasks.values()]):
        notes.append(partial_note(version.title).replace("; CSV holds official scores only", ""))
    if benchmark == "xtreme-r":
        notes.append(XTREME_R_CATEGORY_NOTE)
    for row in rows:
        notes.extend(scores[row.key].notes)
    return {"key": benchmark, "title": version.title, "columns": _columns(benchmark),
            "rows": [_row(r, scores[r.key].name) for r in rows], "tasks": _heatmaps(rows, benchmark, {r.key: scores[r.key].name for r in rows}), "notes": notes}


def default_title(scores: Mapping[str, SystemScores]) -> str:
    """``XTREME leaderboard``, ``XTREME-R leaderboard`` or ``XTREME and XTREME-R leaderboards``."""
    titles = [get_benchmark(b).title for b in by_benchmark(scores)] or [get_benchmark(DEFAULT_BENCHMARK).title]
    return " and ".join(titles) + (" leaderboards" if len(titles) > 1 else " leaderboard")


def page_data(scores: Mapping[str, SystemScores], systems: Mapping[str, Any] | None = None,
              sizes: Mapping[str, int] | None = None, efficacy: Any = None, title: str | None = None,
              notes: Sequence[str] = ()) -> dict[str, Any]:
    """Everything the page shows, as plain JSON-able data: one board per benchmark version found
    (XTREME first; a row never mixes the two), the efficacy view, and notes for every board."""
    from harness_ext import __version__

    versions = by_benchmark(scores) or {DEFAULT_BENCHMARK: {}}
    return {
        "title": title or default_title(scores),
        "generated": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "plugin": __version__,
        "partialMark": PARTIAL_MARK,
        "boards": [_board(benchmark, rows, systems, sizes) for benchmark, rows in versions.items()],
        "efficacy": _efficacy(efficacy),
        "notes": list(notes),
    }


def _efficacy(eff: Any) -> dict[str, Any] | None:
    """The efficacy view: the scaling plot (SVG) and the scaling and per-task gains tables."""
    if eff is None:
        return None
    from harness_ext.reports.efficacy import gains_table, scaling_table

    svg = None
    if eff.groups:
        from harness_ext.reports.plots import scaling_svg

        svg = base64.b64encode(scaling_svg(eff)).decode("ascii")
    return {"svg": svg, "limited": eff.limit_note(), "tables": [_table(scaling_table(eff)), _table(gains_table(eff))],
            "notes": list(eff.notes)}


def _json_for_script(data: Any) -> str:
    """JSON that cannot end the ``<script>`` element it sits in, whatever strings it holds."""
    text = json.dumps(data, ensure_ascii=True, allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render(data: Mapping[str, Any]) -> str:
    """The page: static HTML shell + inline CSS + the data as JSON + the script that draws it."""
    digest = base64.b64encode(hashlib.sha256(SCRIPT.encode("utf-8")).digest()).decode("ascii")
    policy = (f"default-src 'none'; script-src 'sha256-{digest}'; style-src 'unsafe-inline'; img-src data:; "
              "base-uri 'none'; form-action 'none'")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
        f"<meta http-equiv=\"Content-Security-Policy\" content=\"{policy}\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<title>{html.escape(str(data.get('title', 'XTREME leaderboard')))}</title>\n"
        f"<style>{STYLE}</style></head>\n<body>\n{BODY}\n"
        f"<script type=\"application/json\" id=\"xtreme-data\">{_json_for_script(data)}</script>\n"
        f"<script>{SCRIPT}</script>\n</body></html>\n"
    )


def build_page(scores: Mapping[str, SystemScores], systems: Mapping[str, Any] | None = None,
               sizes: Mapping[str, int] | None = None, efficacy: Any = None, title: str | None = None,
               notes: Sequence[str] = ()) -> str:
    """The page of every row: one leaderboard per benchmark version (a switch picks XTREME or
    XTREME-R when the results hold both; a page of XTREME rows only has no switch)."""
    return render(page_data(scores, systems, sizes, efficacy, title, notes))


def efficacy_rows(scores: Mapping[str, SystemScores]) -> dict[str, SystemScores]:
    """The rows the page's efficacy view compares, keyed by system name: XTREME's when there are
    any, else XTREME-R's (gains are compared within one version)."""
    versions = by_benchmark(scores)
    chosen = DEFAULT_BENCHMARK if DEFAULT_BENCHMARK in versions or not versions else next(iter(versions))
    return {row.name: row for row in versions.get(chosen, {}).values()}


STYLE = """
*{box-sizing:border-box}
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;padding:0 16px 32px;color:#1b1f24;
 background:#fff;max-width:100%;overflow-wrap:anywhere}
header{padding:12px 0 4px}h1{font-size:20px;margin:0 0 4px}h2{font-size:17px;margin:18px 0 8px}
.meta{color:#555;font-size:12px}
nav{display:flex;flex-wrap:wrap;gap:6px;margin:10px 0;border-bottom:1px solid #d0d7de;padding-bottom:8px}
button{font:inherit;cursor:pointer;border:1px solid #d0d7de;background:#f6f8fa;border-radius:6px;padding:3px 10px;color:inherit}
button[aria-pressed=true],button[aria-selected=true]{background:#0b5cad;color:#fff;border-color:#0b5cad}
#benches .label{font-weight:600;font-size:13px}
.views{display:flex;flex-wrap:wrap;gap:6px;align-items:center;margin:6px 0}
.wrap{width:100%;max-width:100%}
table{border-collapse:collapse;font-size:12.5px;margin:4px 0 10px}
th,td{border:1px solid #d8dee4;padding:3px 5px;vertical-align:top}
th{background:#f6f8fa;font-weight:600;text-align:center;overflow-wrap:normal;word-break:normal}
th button{border:0;background:none;padding:0;font-weight:600;font-size:inherit;border-radius:0}
th[aria-sort=ascending] button::after{content:" \\25B2"}th[aria-sort=descending] button::after{content:" \\25BC"}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.name{max-width:13em;min-width:7em}td.hname{max-width:11em;min-width:5em}
td.partial{color:#8a4b00;background:#fff8e6}
.badge{display:inline-block;font-size:11px;border-radius:9px;padding:0 6px;margin-left:4px;background:#fff1c2;color:#6b4500;
 border:1px solid #e6c35c;white-space:nowrap}
.warn{color:#b42318;font-weight:700}
ul.notes{font-size:12px;color:#444;padding-left:18px}
table.stacked,table.stacked tbody,table.stacked tr,table.stacked td{display:block;width:auto;max-width:none}
table.stacked thead{display:none}
table.stacked tr{border:1px solid #d0d7de;border-radius:6px;margin:0 0 8px;padding:4px}
table.stacked td{border:0;text-align:left;white-space:normal;padding:1px 4px}
table.stacked td::before{content:attr(data-label) ": ";font-weight:600;color:#555}
.heat td.num{min-width:3.1em;text-align:center}
.heat th.en,.heat td.en{border-right:4px solid #fff;box-shadow:inset -2px 0 0 #8c959f}
.heat th.added{background:#dcf1e0}
.heat td.missing{background:#f0f0f0;color:#999}
.heat td.warned{outline:2px dashed #b42318;outline-offset:-3px}
.legend{font-size:12px;color:#444;margin:4px 0}
.figure{max-width:100%;height:auto;display:block}
section[hidden]{display:none}
select{font:inherit;max-width:100%}
dl.sources dt{font-weight:600;margin-top:8px}dl.sources dd{margin:0 0 0 12px;font-size:12px;color:#333}
"""

BODY = """<header><h1 id="title"></h1><div class="meta" id="meta"></div></header>
<div class="views" id="benches" role="group" aria-label="Benchmark version" hidden></div>
<nav role="tablist" id="tabs"></nav>
<section id="tab-board"><div class="views" id="views"></div><div class="wrap" id="board"></div>
<ul class="notes" id="board-notes"></ul></section>
<section id="tab-langs" hidden><div class="views"><label for="task-select">Task </label><select id="task-select"></select></div>
<div class="legend" id="heat-legend"></div><div class="wrap" id="heat"></div></section>
<section id="tab-eff" hidden><div id="eff"></div></section>
<section id="tab-src" hidden><dl class="sources" id="sources"></dl></section>
<noscript>This page draws its tables with JavaScript; the same data is in report.md, leaderboard.csv and
languages_*.csv beside it.</noscript>"""

SCRIPT = r"""
"use strict";
(function () {
  var D = JSON.parse(document.getElementById("xtreme-data").textContent);
  var collator = new Intl.Collator(undefined, {numeric: true, sensitivity: "base"});
  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }
  function $(id) { return document.getElementById(id); }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }

  $("title").textContent = D.title;
  $("meta").textContent = "Generated " + D.generated + " by xtreme-harness " + D.plugin +
    ". Hover a number for its results file, --limit, date and versions.";

  // ------------------------------------------------------------------ benchmark versions: one board each
  var board = D.boards[0];
  var benchButtons = {};
  if (D.boards.length > 1) {
    $("benches").hidden = false;
    $("benches").appendChild(el("span", "Benchmark:", "label"));
    D.boards.forEach(function (b) {
      var btn = el("button", b.title + " (" + b.rows.length + (b.rows.length === 1 ? " row)" : " rows)"));
      btn.id = "bench-" + b.key;
      btn.title = "show the " + b.title + " leaderboard, heatmaps and sources (each row is scored under one version only)";
      btn.addEventListener("click", function () { useBoard(b); });
      benchButtons[b.key] = btn;
      $("benches").appendChild(btn);
    });
  }
  function useBoard(b) {
    board = b;
    Object.keys(benchButtons).forEach(function (k) { benchButtons[k].setAttribute("aria-pressed", k === b.key ? "true" : "false"); });
    if (!b.state) { b.state = {view: "all", sortKey: null, sortDir: 0, order: b.rows.slice()}; chooseView(); } else drawBoard();
    drawNotes();
    fillTasks();
    drawSources();
    if (!$("tab-langs").hidden) drawHeat();
  }

  // ------------------------------------------------------------------ tabs
  var tabs = [["board", "Leaderboard"], ["langs", "Languages"], ["eff", "Efficacy"], ["src", "Sources"]];
  var tabButtons = {};
  tabs.forEach(function (t) {
    var b = el("button", t[1]);
    b.setAttribute("role", "tab");
    b.id = "tabbtn-" + t[0];
    b.addEventListener("click", function () { show(t[0]); });
    tabButtons[t[0]] = b;
    $("tabs").appendChild(b);
  });
  function show(name) {
    tabs.forEach(function (t) {
      $("tab-" + t[0]).hidden = t[0] !== name;
      tabButtons[t[0]].setAttribute("aria-selected", t[0] === name ? "true" : "false");
    });
    fitAll();
    if (name === "langs") drawHeat();
  }

  // ------------------------------------------------------------------ fitting: no table wider than its box
  function fit(table) {
    table.classList.remove("stacked");
    var box = table.parentElement;
    if (box && table.offsetWidth > box.clientWidth + 1) table.classList.add("stacked");
  }
  function fitAll() {
    var tables = document.querySelectorAll("table.fits");
    for (var i = 0; i < tables.length; i++) fit(tables[i]);
  }

  // ------------------------------------------------------------------ leaderboard
  var groupsOf = {summary: ["id", "score", "cat", "about"], tasks: ["id", "score", "task"], all: ["id", "score", "cat", "task", "about"]};
  var viewButtons = {};
  [["all", "All columns"], ["summary", "Scores & categories"], ["tasks", "Tasks"]].forEach(function (v) {
    var b = el("button", v[1]);
    b.id = "view-" + v[0];
    b.addEventListener("click", function () { board.state.view = v[0]; drawBoard(); });
    viewButtons[v[0]] = b;
    $("views").appendChild(b);
  });

  function compare(a, b, col, dir) {
    var ca = a.cells[col.key], cb = b.cells[col.key];
    if (col.kind === "num") {
      var va = ca ? ca.v : null, vb = cb ? cb.v : null;
      if (va === null && vb === null) return collator.compare(a.name, b.name);
      if (va === null) return 1;   // missing last, in both directions
      if (vb === null) return -1;
      return dir * (va - vb) || collator.compare(a.name, b.name);
    }
    var ta = ca ? ca.t : "", tb = cb ? cb.t : "";
    return dir * collator.compare(ta, tb);
  }
  function sortBy(key) {  // each board keeps its own order
    var st = board.state;
    var col = board.columns.filter(function (c) { return c.key === key; })[0];
    if (st.sortKey === key) st.sortDir = -st.sortDir; else { st.sortKey = key; st.sortDir = col.kind === "num" ? -1 : 1; }
    st.order = board.rows.slice().sort(function (a, b) { return compare(a, b, col, st.sortDir); });
    drawBoard();
  }

  function drawBoard() {
    var st = board.state;
    Object.keys(viewButtons).forEach(function (k) { viewButtons[k].setAttribute("aria-pressed", k === st.view ? "true" : "false"); });
    var box = $("board");
    clear(box);
    var cols = board.columns.filter(function (c) { return groupsOf[st.view].indexOf(c.group) >= 0; });
    var table = el("table", null, "board fits");
    table.id = "leaderboard";
    table.setAttribute("data-benchmark", board.key);
    var head = el("thead"), tr = el("tr");
    cols.forEach(function (c) {
      var th = el("th");
      th.setAttribute("data-key", c.key);
      if (st.sortKey === c.key) th.setAttribute("aria-sort", st.sortDir > 0 ? "ascending" : "descending");
      var b = el("button", c.label);
      b.title = "sort by " + c.label + (c.kind === "num" ? " (missing values last)" : "");
      b.addEventListener("click", function () { sortBy(c.key); });
      th.appendChild(b);
      tr.appendChild(th);
    });
    head.appendChild(tr);
    table.appendChild(head);
    var body = el("tbody");
    st.order.forEach(function (row) {
      var r = el("tr");
      r.setAttribute("data-key", row.key);
      cols.forEach(function (c) {
        var cell = row.cells[c.key] || {t: "-", v: null};
        var td;
        if (c.key === "name") {
          td = el("td", null, "name");
          td.appendChild(el("span", cell.t, "sysname"));
          if (row.badge) {
            var badge = el("span", row.badge, "badge");
            badge.title = row.status;
            td.appendChild(badge);
          }
        } else {
          td = el("td", cell.t, c.kind === "num" ? "num" : "");
          if (cell.p) td.classList.add("partial");
          if (cell.warn) { td.appendChild(el("span", " \u26A0", "warn")); }
        }
        td.title = (cell.p ? "partial (not an " + board.title + " score) \u2014 " : "") + (cell.warn ? "test set: " + cell.warn + " \u2014 " : "") + (cell.src || "");
        td.setAttribute("data-label", c.label);
        r.appendChild(td);
      });
      body.appendChild(r);
    });
    table.appendChild(body);
    box.appendChild(table);
    fit(table);
  }
  function chooseView() {
    board.state.view = "all";
    drawBoard();
    var t = $("leaderboard");
    if (t.classList.contains("stacked")) { board.state.view = "summary"; drawBoard(); }
  }
  function drawNotes() {
    clear($("board-notes"));
    board.notes.concat(D.notes).forEach(function (n) { $("board-notes").appendChild(el("li", n)); });
  }

  // ------------------------------------------------------------------ heatmaps
  var sel = $("task-select");
  function fillTasks() {  // the current board's tasks; the same task stays selected when both have it
    var keep = sel.value;
    clear(sel);
    board.tasks.forEach(function (t) {
      var o = el("option", t.title);
      o.value = t.key;
      sel.appendChild(o);
    });
    var keys = board.tasks.map(function (t) { return t.key; });
    if (keys.length) sel.value = keys.indexOf(keep) >= 0 ? keep : keys[0];
  }
  sel.addEventListener("change", drawHeat);
  function colour(v, lo, hi) {
    var x = hi > lo ? (v - lo) / (hi - lo) : 0.5;
    var light = 94 - 56 * x;
    return ["hsl(212, 70%, " + light.toFixed(1) + "%)", light < 60 ? "#fff" : "#111"];
  }
  function drawHeat() {
    var box = $("heat");
    clear(box);
    var task = board.tasks.filter(function (t) { return t.key === sel.value; })[0];
    if (!task) { box.appendChild(el("p", "No per-language results.")); return; }
    var langs = task.languages.slice();
    var english = langs.indexOf("en") >= 0;
    if (english) langs = ["en"].concat(langs.filter(function (l) { return l !== "en"; }));
    langs = langs.concat(task.extra);
    var values = [];
    task.rows.forEach(function (r) { langs.forEach(function (l) { var c = r.cells[l]; if (c && c.v !== null) values.push(c.v); }); });
    var lo = Math.min.apply(null, values.length ? values : [0]), hi = Math.max.apply(null, values.length ? values : [100]);
    $("heat-legend").textContent = task.title + " (" + board.title + "): " + task.metric + " per language, colour from " +
      lo.toFixed(1) + " (light) to " + hi.toFixed(1) + " (dark); languages in " + board.title + "'s order" +
      (english ? ", English first and set apart" : "") +
      (task.added.length ? "; " + task.added.join(", ") + " added in " + board.title + " (green headers)" : "") +
      (task.extra.length ? "; " + task.extra.join(", ") + " outside the " + board.title + " score" : "") +
      "; \u26A0 = test set is not the benchmark's (hover).";
    var width = box.clientWidth || document.documentElement.clientWidth;
    var per = Math.max(2, Math.floor((width - 260) / 50));
    while (true) {  // as many languages per band as fit the width; fewer if a band is still too wide
      drawBands(box, task, langs, per, lo, hi);
      var tables = box.querySelectorAll("table"), wide = false;
      for (var i = 0; i < tables.length; i++) if (tables[i].offsetWidth > box.clientWidth + 1) wide = true;
      if (!wide || per <= 1) break;
      per -= 1;
    }
  }
  function drawBands(box, task, langs, per, lo, hi) {
    clear(box);
    for (var start = 0; start < langs.length; start += per) {
      var part = langs.slice(start, start + per);
      var table = el("table", null, "heat");
      table.setAttribute("data-task", task.key);
      var head = el("thead"), tr = el("tr");
      tr.appendChild(el("th", "System"));
      if (start === 0) tr.appendChild(el("th", "Avg"));
      part.forEach(function (l) {
        var th = el("th", l);
        if (l === "en") th.className = "en";
        if (task.added.indexOf(l) >= 0) { th.className = "added"; th.title = l + ": added in " + board.title; }
        if (task.extra.indexOf(l) >= 0) th.title = l + ": outside the " + board.title + " score";
        tr.appendChild(th);
      });
      head.appendChild(tr);
      table.appendChild(head);
      var body = el("tbody");
      task.rows.forEach(function (r) {
        var row = el("tr");
        var name = el("td", r.name, "name hname");
        if (r.badge) name.appendChild(el("span", r.badge, "badge"));
        name.title = r.system || r.key;
        row.appendChild(name);
        if (start === 0) row.appendChild(el("td", r.avg, "num"));
        part.forEach(function (l) {
          var c = r.cells[l] || {v: null, src: ""};
          var td = el("td", c.v === null ? "-" : c.v.toFixed(1), "num");
          if (l === "en") td.classList.add("en");
          if (c.v === null) td.classList.add("missing");
          else { var col = colour(c.v, lo, hi); td.style.background = col[0]; td.style.color = col[1]; }
          if (c.warn) { td.classList.add("warned"); td.appendChild(el("span", "\u26A0", "warn")); }
          td.title = l + ": " + (c.v === null ? "no result" : c.v.toFixed(4)) + (c.warn ? " \u2014 test set: " + c.warn : "") + " \u2014 " + c.src;
          row.appendChild(td);
        });
        body.appendChild(row);
      });
      table.appendChild(body);
      box.appendChild(table);
    }
  }

  // ------------------------------------------------------------------ efficacy
  function simpleTable(spec) {
    var wrap = el("div", null, "wrap");
    var table = el("table", null, "fits");
    var head = el("thead"), tr = el("tr");
    spec.header.forEach(function (h) { tr.appendChild(el("th", h)); });
    head.appendChild(tr);
    table.appendChild(head);
    var body = el("tbody");
    spec.rows.forEach(function (cells) {
      var r = el("tr");
      cells.forEach(function (c, i) {
        var td = el("td", c.t, c.v !== null && i > 0 ? "num" : "");
        td.setAttribute("data-label", spec.header[i]);
        r.appendChild(td);
      });
      body.appendChild(r);
    });
    table.appendChild(body);
    wrap.appendChild(el("h2", spec.title));
    wrap.appendChild(table);
    var notes = el("ul", null, "notes");
    spec.notes.forEach(function (n) { notes.appendChild(el("li", n)); });
    wrap.appendChild(notes);
    return wrap;
  }
  (function drawEfficacy() {
    var box = $("eff");
    if (!D.efficacy) {
      box.appendChild(el("p", "No efficacy view: run xtreme-eval report with --checkpoints checkpoints.yaml " +
        "(family, size, intermediate_task, seed) to compare systems with their baselines."));
      return;
    }
    if (D.efficacy.limited) box.appendChild(el("p", D.efficacy.limited, "warn"));
    if (D.efficacy.svg) {
      var img = el("img", null, "figure");
      img.alt = "Gain over baseline by model size, with confidence intervals";
      img.src = "data:image/svg+xml;base64," + D.efficacy.svg;
      img.id = "efficacy-plot";
      box.appendChild(img);
    } else {
      box.appendChild(el("p", "No plot: no system with an intermediate task has a baseline system in these results."));
    }
    D.efficacy.tables.forEach(function (t) { box.appendChild(simpleTable(t)); });
  })();

  // ------------------------------------------------------------------ sources
  function drawSources() {
    var box = $("sources");
    clear(box);
    board.rows.forEach(function (row) {
      box.appendChild(el("dt", row.name + (row.name !== row.system ? " (" + row.system + ")" : "") +
        (D.boards.length > 1 ? " \u2014 " + board.title : "")));
      row.sources.forEach(function (s) { box.appendChild(el("dd", s.what + ": " + s.text)); });
    });
  }

  var timer = null;
  window.addEventListener("resize", function () {
    clearTimeout(timer);
    timer = setTimeout(function () { drawBoard(); fitAll(); if (!$("tab-langs").hidden) drawHeat(); }, 100);
  });
  show("board");
  useBoard(board);
})();
"""
