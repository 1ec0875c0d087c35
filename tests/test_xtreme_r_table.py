"""The XTREME-R structure of the one task table: names, generated groups, added languages.

XTREME's users keep meaning XTREME (``TASKS``, ``xtreme_*``); XTREME-R's groups and added
languages come from the same table; UD-POS reads UD v2.7 for XTREME-R's added languages
only, as the official download_data.sh does.
"""

from __future__ import annotations

import fnmatch
import shutil
from pathlib import Path

import pytest
import yaml

from xtreme_tasks import generate
from xtreme_tasks.data import DataError, panx, udpos
from xtreme_tasks.table import BENCHMARKS, TABLE, TASK_ORDER, TASKS, XTREME_R_ADDED

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
#: the official evaluate.py's XTREME_R_TASK2LANGS (lareqa is listed there with no languages)
OFFICIAL_R = {
    "xnli": "ar,bg,de,el,en,es,fr,hi,ru,sw,th,tr,ur,vi,zh",
    "panx": "ar,he,vi,id,jv,ms,tl,eu,ml,ta,te,af,nl,en,de,el,bn,hi,mr,ur,fa,fr,it,pt,es,bg,ru,ja,ka,ko,th,sw,yo,my,"
            "zh,kk,tr,et,fi,hu,qu,pl,uk,az,lt,pa,gu,ro",
    "udpos": "af,ar,bg,de,el,en,es,et,eu,fa,fi,fr,he,hi,hu,id,it,ja,kk,ko,mr,nl,pt,ru,ta,te,th,tl,tr,ur,vi,yo,zh,"
             "lt,pl,uk,wo,ro",
    "tatoeba": "ar,he,vi,id,jv,tl,eu,ml,ta,te,af,nl,de,el,bn,hi,mr,ur,fa,fr,it,pt,es,bg,ru,ja,ka,ko,th,sw,zh,kk,tr,"
               "et,fi,hu,az,lt,pl,uk,ro",
    "xcopa": "et,ht,id,it,qu,sw,ta,th,tr,vi,zh",
    "mewslix": "ar,de,en,es,fa,ja,pl,ro,ta,tr,uk",
    "xquad": "en,es,de,el,ru,tr,ar,vi,th,zh,hi,ro",
    "mlqa": "en,es,de,ar,hi,vi,zh",
    "tydiqa": "en,ar,bn,fi,id,ko,ru,sw,te",
}


def test_benchmarks_follow_the_official_evaluate_py():
    r = BENCHMARKS["xtreme-r"]
    assert set(r.tasks) == set(OFFICIAL_R) | {"lareqa"}
    for task, langs in OFFICIAL_R.items():
        assert set(r.languages[task]) == set(langs.split(",")), task
    assert r.categories["retrieval"] == ("tatoeba", "mewslix") and "xcopa" in r.categories["multi_choice"]
    assert BENCHMARKS["xtreme"].tasks == TASK_ORDER == tuple(TASKS)
    assert len(TASKS) == 9 and set(TABLE) - set(TASKS) == {"xcopa", "lareqa", "mewslix"}
    assert all(TASKS[t].languages == BENCHMARKS["xtreme"].languages[t] for t in TASKS)


def test_group_names_keep_xtreme_star_meaning_xtreme():
    files = generate.expected_files()
    groups = {yaml.safe_load(content)["group"] for path, content in files.items() if path.name.startswith("_")}
    assert sorted(g for g in groups if fnmatch.fnmatch(g, "xtreme_*")) == sorted(TASKS[t].group for t in TASK_ORDER)
    r = BENCHMARKS["xtreme-r"]
    assert sorted(g for g in groups if fnmatch.fnmatch(g, "xtreme-r_*")) == sorted(r.task_group(t) for t in r.tasks)
    assert {"xtreme", "xtreme-r"} <= groups
    umbrella = yaml.safe_load(files[Path("_xtreme-r.yaml")])
    assert umbrella["task"] == [r.task_group(t) for t in r.tasks]
    udpos_r = yaml.safe_load(files[Path("udpos") / "_xtreme-r_udpos.yaml"])["task"]
    udpos_x = yaml.safe_load(files[Path("udpos") / "_xtreme_udpos.yaml"])["task"]
    assert "xtreme-udpos-lt" in udpos_r and "xtreme-udpos-lt" not in udpos_x and len(udpos_r) == 38
    assert len(yaml.safe_load(files[Path("panx") / "_xtreme-r_panx.yaml"])["task"]) == 48
    assert "xtreme-tatoeba-az" in yaml.safe_load(files[Path("tatoeba") / "_xtreme-r_tatoeba.yaml"])["task"]
    assert "xtreme-xquad-ro" in yaml.safe_load(files[Path("xquad") / "_xtreme-r_xquad.yaml"])["task"]


def _conllu(path: Path, sentences: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    blocks = [f"# sent_id = {i}\n1\tLabas{i}\t_\tINTJ\t_\t_\t0\troot\t_\t_\n2\tpasauli\t_\tNOUN\t_\t_\t1\tobj\t_\t_\n"
              for i in range(sentences)]
    path.write_text("\n".join(blocks) + "\n", encoding="utf-8")


def test_udpos_reads_each_language_from_its_official_release(tmp_path, caplog):
    """XTREME-R's download unpacks v2.5 and v2.7 side by side: lt from v2.7, en from v2.5."""
    root = tmp_path / "udpos"
    _conllu(root / "ud-treebanks-v2.5" / "UD_Lithuanian-HSE" / "lt_hse-ud-test.conllu", 3)
    _conllu(root / "ud-treebanks-v2.7" / "UD_Lithuanian-HSE" / "lt_hse-ud-test.conllu", 5)
    _conllu(root / "ud-treebanks-v2.7" / "UD_Lithuanian-ALKSNIS" / "lt_alksnis-ud-test.conllu", 2)
    for release, n in (("2.5", 4), ("2.7", 6)):
        _conllu(root / f"ud-treebanks-v{release}" / "UD_English-EWT" / "en_ewt-ud-test.conllu", n)
    assert len(udpos.local(tmp_path, "udpos", "lt", "test")) == 5 + 2
    assert len(udpos.local(tmp_path, "udpos", "en", "test")) == 4
    assert "counts may differ" not in caplog.text
    shutil.rmtree(root / "ud-treebanks-v2.7" / "UD_Lithuanian-HSE")
    shutil.rmtree(root / "ud-treebanks-v2.7" / "UD_Lithuanian-ALKSNIS")
    assert len(udpos.local(tmp_path, "udpos", "lt", "test")) == 3  # only v2.5 there: read, with a warning
    assert "the official UD-POS lt is UD v2.7" in caplog.text
    with pytest.raises(DataError, match="the official download reads wo from UD v2.7"):
        udpos.local(tmp_path, "udpos", "wo", "test")


def test_added_languages_without_a_hub_copy_say_so_in_one_line():
    with pytest.raises(DataError, match=r"UD-POS lt: google/xtreme has no config for it .*XTREME_DATA_DIR"):
        udpos.hub("udpos", "lt", "test", "main")
    with pytest.raises(DataError, match=r"PAN-X qu: google/xtreme has PAN-X configs for XTREME's 40 languages only"):
        panx.hub("panx", "qu", "test", "main")
    assert set(XTREME_R_ADDED["tatoeba"]) <= set(TABLE["tatoeba"].extra_languages)
