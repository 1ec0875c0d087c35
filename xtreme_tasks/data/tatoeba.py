"""Tatoeba (LASER's test set): line i of ``.<xxx>`` translates line i of ``.eng``.

Local layout (LASER ``data/tatoeba/v1``, as XTREME's ``download_data.sh`` fetches it)::

    $XTREME_DATA_DIR/tatoeba/tatoeba.<xxx>-eng.<xxx>
    $XTREME_DATA_DIR/tatoeba/tatoeba.<xxx>-eng.eng

``lang`` is an XTREME two-letter code (mapped with ``TATOEBA_CODES``: ``zh`` ->
``cmn``, ``fa`` -> ``pes``, ``sw`` -> ``swh``, ...) or, for the languages outside
XTREME, LASER's own three-letter code (all 112 are in ``LASER_LANGUAGES``).

Documents: ``{"id", "index", "src": xx sentence, "tgt": English sentence}``; the
retrieval gold is implicit (English sentence ``index`` translates xx sentence
``index``). Tatoeba has one split; ``test`` (ours) is the hub's ``validation``.
"""

from __future__ import annotations

from pathlib import Path

from xtreme_tasks.data import DataError, require_file
from xtreme_tasks.data.hub import load_dataset as hub_load, use_local_instead
from xtreme_tasks.data.textio import read_lines
from xtreme_tasks.table import HUB_DATASET, LASER_EXTRA, LASER_LANGUAGES, TATOEBA_ALL_CODES, TATOEBA_CODES  # noqa: F401

SPLITS = ("test", "validation", "dev")


def laser_code(lang: str) -> str:
    """XTREME / XTREME-R code -> LASER three-letter code (a LASER code passes through)."""
    if lang in TATOEBA_ALL_CODES:
        return TATOEBA_ALL_CODES[lang]
    if lang in LASER_LANGUAGES:
        return lang
    raise DataError(
        f"Tatoeba has no language {lang!r}: use an XTREME or XTREME-R code ({' '.join(sorted(TATOEBA_ALL_CODES))}) "
        f"or a LASER three-letter code ({' '.join(LASER_LANGUAGES)})"
    )


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise DataError(f"Tatoeba has a single split (test; the hub calls it validation), not {split!r}")


def _read_lines(path: Path, what: str) -> list[str]:
    """Lines as XTREME's ``evaluate_retrieval.py`` reads them: ``[l.strip() for l in open(f)]``.

    Universal newlines (a lone ``\r`` ends a line, as in ``open()``), each line stripped,
    BOM dropped; bad bytes and an empty file are DataError naming the file.
    """
    return [line.strip() for line in read_lines(path, what).lines]


def pairs_to_docs(lang: str, xx: list[str], en: list[str], where: str) -> list[dict]:
    if len(xx) != len(en):
        raise DataError(f"{where}: {len(xx)} {lang} sentences but {len(en)} English ones; line i must translate line i")
    return [
        {"id": f"tatoeba-{lang}-{i}", "index": i, "src": src, "tgt": tgt}
        for i, (src, tgt) in enumerate(zip(xx, en))
    ]


def local(root: Path, task: str, lang: str, split: str) -> list[dict]:
    _check_split(split)
    code = laser_code(lang)
    folder = Path(root) / "tatoeba"
    xx_file = require_file(folder / f"tatoeba.{code}-eng.{code}", f"Tatoeba {code} sentences")
    en_file = require_file(folder / f"tatoeba.{code}-eng.eng", f"Tatoeba English side for {code}")
    return pairs_to_docs(
        lang, _read_lines(xx_file, f"Tatoeba {code} file"), _read_lines(en_file, "Tatoeba English file"), str(xx_file)
    )


def hub(task: str, lang: str, split: str, revision: str) -> list[dict]:
    """``google/xtreme`` config ``tatoeba.<xxx>`` (only its ``validation`` split exists)."""
    _check_split(split)
    code = laser_code(lang)
    if code not in TATOEBA_CODES.values():
        raise DataError(
            f"Tatoeba {lang}: {HUB_DATASET} has Tatoeba configs only for the 36 XTREME languages, not for "
            f"LASER's {code!r}; {use_local_instead(task, code)}"
        )
    rows = hub_load(task, lang, HUB_DATASET, f"tatoeba.{code}", "validation", revision)
    # the hub keeps each line's trailing newline; strip as the official reader does
    xx = [row["source_sentence"].strip() for row in rows]
    en = [row["target_sentence"].strip() for row in rows]
    return pairs_to_docs(lang, xx, en, f"hub {HUB_DATASET}@{revision} tatoeba.{code}")
