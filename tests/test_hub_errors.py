"""Hub failures (offline, a config or revision the hub lacks) become one DataError that says to
set XTREME_DATA_DIR and which layout to put there. `datasets.load_dataset` is faked with the
exception types `datasets` / `huggingface_hub` really raise; one test runs the real call offline."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from xtreme_tasks.data import DataError, load_docs
from xtreme_tasks.data.hub import LOCAL_LAYOUTS

ROOT = Path(__file__).resolve().parents[1]


def offline_builtin() -> Exception:
    # what datasets 5.x raises offline: a builtin ConnectionError naming the hub error
    return ConnectionError("Couldn't reach 'google/xtreme' on the Hub (LocalEntryNotFoundError)")


def offline_mode() -> Exception:
    from huggingface_hub.errors import OfflineModeIsEnabled

    return OfflineModeIsEnabled("Cannot reach https://huggingface.co: offline mode is enabled.")


def no_such_config() -> Exception:
    return ValueError("BuilderConfig 'tatoeba.xyz' not found. Available: ['XNLI', 'tydiqa']")


def no_such_revision() -> Exception:
    from datasets.exceptions import DatasetNotFoundError

    return DatasetNotFoundError("Revision 'deadbeef' doesn't exist for dataset 'google/xtreme' on the Hub.")


@pytest.fixture
def hub_raises(monkeypatch):
    import datasets

    monkeypatch.delenv("XTREME_DATA_DIR", raising=False)
    monkeypatch.setenv("XTREME_UDPOS_FROM_HUB", "1")  # the hub's UD-POS is refused unless asked for
    calls = []

    def install(make):
        def fake(name, config, split=None, revision=None):
            calls.append((name, config, split, revision))
            raise make()

        monkeypatch.setattr(datasets, "load_dataset", fake)
        return calls

    return install


@pytest.mark.parametrize("task, lang", [
    ("xnli", "de"), ("pawsx", "ko"), ("udpos", "fr"), ("panx", "sw"), ("xquad", "th"),
    ("xquad", "ro"), ("mlqa", "hi"), ("tydiqa", "te"), ("tatoeba", "de"),
])
@pytest.mark.parametrize("make", [offline_builtin, offline_mode], ids=["ConnectionError", "OfflineModeIsEnabled"])
def test_offline_says_to_set_the_data_dir_and_the_layout(hub_raises, task, lang, make):
    calls = hub_raises(make)
    with pytest.raises(DataError) as err:
        load_docs(task, lang)
    message = str(err.value)
    assert calls, "the hub loader was not called"
    assert "\n" not in message and "the hub cannot be reached" in message
    assert "set XTREME_DATA_DIR to a folder holding" in message
    assert LOCAL_LAYOUTS[task].split(" ")[0].replace("<lang>", lang)[:12] in message
    assert isinstance(err.value.__cause__, type(make()))  # the original error stays attached


def test_a_config_or_revision_the_hub_lacks(hub_raises):
    hub_raises(no_such_config)
    with pytest.raises(DataError, match=r"has no such config.*XTREME_DATA_DIR.*xnli/test-de\.tsv"):
        load_docs("xnli", "de")
    hub_raises(no_such_revision)
    with pytest.raises(DataError, match=r"not found on the hub: Revision 'deadbeef'.*XTREME_DATA_DIR"):
        load_docs("panx", "de")


def test_other_errors_are_not_disguised(hub_raises):
    hub_raises(lambda: RuntimeError("a bug in the loader"))
    with pytest.raises(RuntimeError, match="a bug"):
        load_docs("xnli", "de")


def test_tatoeba_extras_and_bucc_are_refused_before_asking_the_hub(hub_raises):
    calls = hub_raises(offline_builtin)
    with pytest.raises(DataError, match=r"only for the 36 XTREME languages.*'amh'.*tatoeba\.amh-eng\.amh"):
        load_docs("tatoeba", "amh")
    with pytest.raises(DataError, match=r"only the gold sentence pairs.*XTREME_DATA_DIR.*bucc2018/de-en"):
        load_docs("bucc2018", "de")
    assert calls == []


def test_real_datasets_offline_gives_one_line(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"), "PYTHONPATH": str(ROOT)}
    env.pop("XTREME_DATA_DIR", None)
    code = (
        "from xtreme_tasks.data import DataError, load_docs\n"
        "try:\n    load_docs('xnli', 'de')\nexcept DataError as err:\n    print('DataError:', err)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.stdout.startswith("DataError: xnli de: cannot load google/xtreme@"), out.stdout + out.stderr
    assert "the hub cannot be reached" in out.stdout and "XTREME_DATA_DIR" in out.stdout


def test_offline_is_found_by_one_probe_not_by_retries(hub_raises, monkeypatch):
    """Issue 22: without HF_HUB_OFFLINE, huggingface_hub retried every file five times with
    back-off (25 s per task, ~40 min for xtreme_*). One short probe per process decides, and
    the hub libraries then read their cache only."""
    import datasets
    import huggingface_hub.constants

    from xtreme_tasks.data import hub

    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(hub, "_OFFLINE_FOUND", None)
    probes = []
    monkeypatch.setattr(hub, "hub_reachable", lambda timeout=3.0: probes.append(timeout) or False)
    seen = []

    def offline_mode_seen():
        seen.append(datasets.config.HF_HUB_OFFLINE and huggingface_hub.constants.HF_HUB_OFFLINE)
        return offline_mode()

    hub_raises(offline_mode_seen)
    for lang in ("de", "fr"):
        with pytest.raises(DataError, match="the hub cannot be reached"):
            load_docs("xnli", lang)
    assert probes == [3.0] and seen == [True, True]
