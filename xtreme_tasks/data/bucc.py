"""BUCC 2018 bitext mining: every sentence of both sides, with the gold pairs.

Real BUCC mining searches a large comparable corpus where most sentences have no
translation (distractors); only the original BUCC 2018 files have them. Each
line is ``<id>\\t<sentence>`` (``de-000000001``, ``en-000000001``), a gold line
``<xx-id>\\t<en-id>``. Accepted layouts under ``$XTREME_DATA_DIR/bucc2018/``:

* after XTREME's ``download_data.sh`` (which renames sample -> dev, training -> test
  and deletes the test gold)::

      <l>-en.dev.<l>  <l>-en.dev.en  <l>-en.dev.gold  <l>-en.test.<l>  <l>-en.test.en

* the original archives' names, flat or in their ``<l>-en/`` folder::

      <l>-en.sample.{<l>,en,gold}   <l>-en.training.{<l>,en,gold}

Splits: ``dev`` (alias ``validation``, ``sample``) and ``test`` (alias ``training``).
Documents, one per sentence::

    {"id", "split": "dev"|"test", "side": "xx"|"en", "sent_id", "text",
     "gold": [en ids] on xx sentences, or None when the split has no gold file}

The hub's ``bucc18.<l>`` configs hold only the gold pairs (no distractors), so
:func:`hub` refuses them for mining.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from xtreme_tasks.data import DataError
from xtreme_tasks.data.hub import use_local_instead
from xtreme_tasks.data.textio import read_lines
from xtreme_tasks.table import HUB_DATASET

#: our split -> file stems to look for, in order (XTREME's renamed name first)
SPLIT_STEMS: dict[str, tuple[str, ...]] = {
    "dev": ("dev", "sample"),
    "validation": ("dev", "sample"),
    "sample": ("dev", "sample"),
    "test": ("test", "training"),
    "training": ("test", "training"),
}
CANONICAL_SPLIT = {"dev": "dev", "validation": "dev", "sample": "dev", "test": "test", "training": "test"}
SOURCE_URL = "https://comparable.limsi.fr/bucc2018/bucc2018-<l>-en.{sample,training}-gold.tar.bz2"


def split_files(root: Path, lang: str, split: str) -> tuple[Path, Path, Path | None]:
    """``(xx file, en file, gold file or None)`` for one split, whichever layout is present."""
    if split not in SPLIT_STEMS:
        raise DataError(f"BUCC 2018 has splits dev (sample) and test (training), not {split!r}")
    base = Path(root) / "bucc2018"
    tried: list[str] = []
    for folder in (base, base / f"{lang}-en"):
        for stem in SPLIT_STEMS[split]:
            prefix = folder / f"{lang}-en.{stem}"
            xx, en, gold = (Path(f"{prefix}.{suffix}") for suffix in (lang, "en", "gold"))
            tried.append(f"{prefix}.{{{lang},en,gold}}")
            if xx.is_file() and en.is_file():
                return xx, en, gold if gold.is_file() else None
    raise DataError(
        f"BUCC 2018 {lang}-en {split}: no sentence files; looked for {', '.join(tried)}. "
        f"Expected the original BUCC 2018 files ({SOURCE_URL}) under $XTREME_DATA_DIR/bucc2018/, "
        f"as XTREME's scripts/download_data.sh leaves them"
    )


def read_sentences(path: Path) -> list[tuple[str, str]]:
    """``(id, sentence)`` rows of a BUCC sentence file, as XTREME's ``run_bucc2018.sh`` reads them.

    The official script writes ``cut -f1`` (id) and ``cut -f2`` (sentence) of each line to
    files; ``utils_retrieve.py`` strips the ids, but mines the sentence LINES as they are
    (``text_load_unify``: a sentence that occurs twice, once with a trailing space, is two
    rows that each use up a partner) and strips them only to map candidates back to ids
    (``read_sent2id``, where the two collide and are dropped). So the sentence is kept as
    ``cut -f2`` gives it; :func:`harness_ext.retrieval.mining.bucc_candidates` strips where
    the official code does. A line without a tab is refused (``cut`` would give the whole
    line as both id and sentence).
    """
    rows = []
    for line_no, line in enumerate(read_lines(path, "BUCC sentence file").lines, 1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) < 2:
            raise DataError(f"{path}:{line_no}: expected '<id>\\t<sentence>', found no tab")
        rows.append((fields[0].strip(), fields[1]))
    return rows


def read_gold(path: Path) -> list[tuple[str, str]]:
    pairs = []
    for line_no, line in enumerate(read_lines(path, "BUCC gold file").lines, 1):
        line = line.strip()
        if not line:
            continue
        parts = line.split("\t")
        if len(parts) != 2:
            raise DataError(f"{path}:{line_no}: expected '<xx-id>\\t<en-id>', got {len(parts)} field(s)")
        pairs.append((parts[0], parts[1]))
    return pairs


def local(root: Path, task: str, lang: str, split: str) -> list[dict]:
    xx_file, en_file, gold_file = split_files(root, lang, split)
    split_name = CANONICAL_SPLIT[split]
    gold: dict[str, list[str]] | None = None
    if gold_file is not None:
        gold = defaultdict(list)
        for xx_id, en_id in read_gold(gold_file):
            gold[xx_id].append(en_id)
    xx_rows, en_rows = read_sentences(xx_file), read_sentences(en_file)
    if gold is not None:
        known_xx, known_en = {i for i, _ in xx_rows}, {i for i, _ in en_rows}
        stray = [(x, e) for x, ens in gold.items() for e in ens if x not in known_xx or e not in known_en]
        if stray:
            raise DataError(
                f"{gold_file}: {len(stray)} gold pair(s) name sentences missing from {xx_file.name}/{en_file.name}, "
                f"e.g. {stray[0]}; the gold and sentence files must come from the same archive"
            )
    docs = []
    for side, rows in (("xx", xx_rows), ("en", en_rows)):
        for sent_id, text in rows:
            docs.append({
                "id": f"bucc2018-{lang}-{split_name}-{sent_id}",
                "split": split_name,
                "side": side,
                "sent_id": sent_id,
                "text": text,
                "gold": (list(gold.get(sent_id, ())) if gold is not None else None) if side == "xx" else None,
            })
    return docs


def hub(task: str, lang: str, split: str, revision: str) -> list[dict]:
    """Refused: the hub copy cannot be mined (see the module docstring)."""
    raise DataError(
        f"BUCC 2018 mining needs the original BUCC 2018 files: the hub's {HUB_DATASET} 'bucc18.{lang}' config "
        f"holds only the gold sentence pairs, without the distractor sentences that make mining hard, so "
        f"scores on it are not BUCC scores. Download {SOURCE_URL} (or run XTREME's scripts/download_data.sh) "
        f"and {use_local_instead(task, lang)}"
    )
