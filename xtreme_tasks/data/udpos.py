"""UD-POS: Universal Dependencies v2.5 treebanks (XTREME-R's added lt pl uk wo ro: v2.7), 17 UPOS
tags, treebanks pooled per language.

Local layouts under ``$XTREME_DATA_DIR/udpos`` (the first that has the language is read)::

    <split>-<lang>.tsv                      official XTREME output: word<TAB>UPOS,
                                            a blank line between sentences (labels kept)
    <lang>/*-ud-<split>.conllu              one folder per language (the layout of the
                                            official script's intermediate conll/<lang>/):
                                            every treebank in it is read
    ud-treebanks-v2.5/UD_*/<tb>-ud-<split>.conllu   an unpacked UD v2.5 release
    UD_*/<tb>-ud-<split>.conllu             treebank folders as UD ships them
    <tb>-ud-<split>.conllu                  treebank files side by side (flat)

In the last three, a treebank belongs to a language when the code before the first
``_`` of its file name is the language (``el_gdt-ud-test.conllu`` is ``el``; Ancient
Greek's ``grc_proiel-...`` is not), exactly as ``scripts/download_data.sh`` selects
them, and the treebanks are pooled in file-name order, as ``utils_preprocess.py
udpos_preprocess`` reads them (``sorted(files)``). Other files (LICENSE, README) are
ignored. A file name found twice is refused (it would be counted twice).

``<split>`` is ``test``, ``dev`` or ``train``. CoNLL-U files go through
:mod:`xtreme_tasks.data.conllu`, which reproduces XTREME's conversion (comments and
empty nodes skipped, a multi-word token kept as its surface form with its head's
UPOS, spaces and U+200C removed inside words), so both layouts give the same
documents. Sentences XTREME drops (hidden ``_`` forms, no words) are counted and
logged as a warning, never dropped silently.

The hub copy (``google/xtreme``, ``udpos.<Language>``) is NOT the same data: its
builder keeps every CoNLL-U line whose FORM and UPOS are not ``_``. So it splits
multi-word tokens into their syntactic words (``du`` -> ``de`` + ``le``; English
``don't`` -> ``do`` + ``n't``), keeps empty nodes that carry a UPOS (English-EWT's
``24.1``), and drops real ``_`` tokens. Scores on it are close to, not equal to,
the official numbers. It also pools treebanks by language *name* (``udpos.Greek`` holds
Ancient Greek too). Only for the languages where none of this changes a sentence
(``UDPOS_HUB_SAME`` in ``xtreme_tasks/fingerprints.py``: af bg eu hu id ko te th tl ur yo)
is the hub copy read; elsewhere :func:`hub` refuses it unless ``XTREME_UDPOS_FROM_HUB=1``,
and a run on it is recorded as not comparable.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from xtreme_tasks.data import DataError, DATA_DIR_ENV
from xtreme_tasks.data.hub import load_dataset as hub_load, use_local_instead
from xtreme_tasks.data.conllu import ReadReport, read_word_tag_tsv, xtreme_sentences
from xtreme_tasks.table import HUB_DATASET, UDPOS_DEFAULT_RELEASE, UDPOS_HUB_NAMES, UDPOS_RELEASE, UPOS_TAGS

log = logging.getLogger(__name__)

#: our split name -> the name in XTREME's and UD's file names
SPLIT_FILES = {"test": "test", "validation": "dev", "dev": "dev", "train": "train"}
#: our split name -> the hub's split name
HUB_SPLITS = {"test": "test", "validation": "validation", "dev": "validation", "train": "train"}


def _docs(rows, lang: str, split: str) -> list[dict]:
    return [
        {"id": f"udpos-{lang}-{split}-{i}", "words": words, "tags": tags}
        for i, (_where, words, tags) in enumerate(rows)
    ]


def conllu_files(folder: Path, split: str) -> list[Path]:
    """The treebank files for ``split`` in one language's folder, sorted (XTREME pools them in this order)."""
    return sorted(folder.glob(f"*-ud-{SPLIT_FILES.get(split, split)}.conllu"), key=lambda p: p.name)


def treebank_language(path: Path) -> str:
    """The language code of a UD file name, as ``download_data.sh`` reads it (text before the first ``_``)."""
    return path.name.split("_", 1)[0]


def release_files(udroot: Path, lang: str, split: str) -> list[Path]:
    """The language's treebanks in a UD release, UD_* folders or flat files under ``udroot``, pooled in XTREME's order.

    Looks at ``udroot/*.conllu``, ``udroot/UD_*/*.conllu`` and ``udroot/ud-treebanks-v*/UD_*/*.conllu``.
    """
    pattern = f"*-ud-{SPLIT_FILES.get(split, split)}.conllu"
    candidates = [
        *udroot.glob(pattern),
        *udroot.glob(f"UD_*/{pattern}"),
        *udroot.glob(f"ud-treebanks-v*/UD_*/{pattern}"),
    ]
    wanted = release_of(lang)
    mine = [p for p in candidates if treebank_language(p) == lang]
    releases = sorted({p.parent.parent.name for p in mine if p.parent.parent.name.startswith("ud-treebanks-v")})
    if len(releases) > 1:
        # XTREME-R's download unpacks v2.5 and v2.7 side by side: read the language's own release
        mine = [p for p in mine if p.parent.parent.name == f"ud-treebanks-v{wanted}"] or mine
        releases = sorted({p.parent.parent.name for p in mine if p.parent.parent.name.startswith("ud-treebanks-v")})
    if releases and releases != [f"ud-treebanks-v{wanted}"]:
        log.warning(
            "UD-POS %s: %s holds %s; the official UD-POS %s is UD v%s (ud-treebanks-v%s), so counts may differ "
            "from the official test set", lang, udroot, ", ".join(releases), lang, wanted, wanted,
        )
    by_name: dict[str, Path] = {}
    for path in sorted(mine):
        if path.name in by_name:
            raise DataError(
                f"UD-POS {lang}: the treebank file {path.name} is found twice, {by_name[path.name]} and {path}; "
                f"keep one copy under {udroot} (both would be pooled, counting its sentences twice)"
            )
        by_name[path.name] = path
    return [by_name[name] for name in sorted(by_name)]


def release_of(lang: str) -> str:
    """The UD release the official download reads for ``lang``: v2.7 for XTREME-R's lt pl uk wo ro, else v2.5."""
    return UDPOS_RELEASE.get(lang, UDPOS_DEFAULT_RELEASE)


def read_conllu_files(paths: list[Path], lang: str, split: str) -> tuple[list[dict], ReadReport]:
    """Documents from CoNLL-U files plus the report of what was skipped."""
    report = ReadReport()
    rows = [row for path in paths for row in xtreme_sentences(path, lang, UPOS_TAGS, report)]
    return _docs(rows, lang, split), report


def read_tsv(path: Path, lang: str, split: str) -> list[dict]:
    """Documents from an official ``udpos/<split>-<lang>.tsv`` (labels kept)."""
    rows = read_word_tag_tsv(path, UPOS_TAGS, what=f"UD-POS {split}-{lang}.tsv")
    return _docs(rows, lang, split)


def _log_report(report: ReadReport, lang: str, split: str, paths: list[Path]) -> None:
    log.info(
        "UD-POS %s %s: read %d file(s); %d empty node(s) skipped, %d multi-word token(s) kept as surface forms",
        lang, split, len(paths), report.empty_nodes, report.multiword_tokens,
    )
    if report.skipped:
        examples = ", ".join(s.where for s in report.skipped[:3])
        log.warning("UD-POS %s %s: %s (e.g. %s)", lang, split, report.summary(), examples)


def local(root: Path, task: str, lang: str, split: str) -> list[dict]:
    udroot = root / "udpos"
    split_name = SPLIT_FILES.get(split, split)
    tsv = udroot / f"{split_name}-{lang}.tsv"
    if tsv.is_file():
        return read_tsv(tsv, lang, split)
    folder = udroot / lang
    paths = conllu_files(folder, split) if folder.is_dir() else []
    if not paths and udroot.is_dir():
        paths = release_files(udroot, lang, split)
    if not paths:
        raise DataError(
            f"missing UD-POS {lang} {split} data under {udroot}: none of {tsv.name} (official XTREME layout, "
            f"word<TAB>UPOS), {lang}/*-ud-{split_name}.conllu, or {lang}_*-ud-{split_name}.conllu (flat, in UD_*/ "
            f"folders or in an unpacked ud-treebanks-v{release_of(lang)}/) exists; add one of them (the official "
            f"download reads {lang} from UD v{release_of(lang)}), or unset {DATA_DIR_ENV} to read the hub copy"
        )
    docs, report = read_conllu_files(paths, lang, split)
    _log_report(report, lang, split, paths)
    return docs


def tag_names(feature, where: str) -> list[str] | None:
    """The names behind a hub column of class ids (``Sequence(ClassLabel)``), or None for strings."""
    inner = getattr(feature, "feature", None)
    if inner is None and isinstance(feature, list) and feature:
        inner = feature[0]
    names = getattr(inner, "names", None)
    if names is None and inner is not None and getattr(inner, "dtype", "string") != "string":
        raise DataError(f"{where}: tag column of type {inner!r} has no class names")
    return list(names) if names is not None else None


def hub_rows(task: str, lang: str, config: str, split: str, revision: str, tag_column: str, tagset: tuple[str, ...]):
    """``(where, words, tags)`` per row of a hub token-classification config, tags checked."""
    rows = hub_load(task, lang, HUB_DATASET, config, split, revision)
    where = f"hub {HUB_DATASET}@{revision} {config} {split}"
    names = tag_names(rows.features[tag_column], where)
    valid = set(tagset)
    for i, row in enumerate(rows):
        tags = [names[t] if names is not None else str(t) for t in row[tag_column]]
        unknown = sorted(set(tags) - valid)
        if unknown:
            raise DataError(f"{where} row {i}: tags {unknown} are not in the task's tag set {' '.join(tagset)}")
        if len(tags) != len(row["tokens"]):
            raise DataError(f"{where} row {i}: {len(row['tokens'])} tokens but {len(tags)} tags")
        yield f"{where} row {i}", list(row["tokens"]), tags


def drop_empty(rows: list, what: str) -> list:
    """Rows with words; an empty one is counted and logged (it could be neither tagged nor scored)."""
    kept = [row for row in rows if row[1]]
    if len(kept) != len(rows):
        log.warning("%s: %d sentence(s) with no words skipped", what, len(rows) - len(kept))
    return kept


HUB_OPT_IN_ENV = "XTREME_UDPOS_FROM_HUB"


def hub_caveat(lang: str) -> str:
    """Why the hub's ``udpos.<Language>`` is not XTREME's test set; "" where it holds the same sentences.

    The fingerprint table knows, per language, whether the hub builder's rule gives XTREME's
    sentences (``UDPOS_HUB_SAME``: no multi-word tokens, no extra treebanks, no spaces in words);
    the text hash checked at load time confirms it on the real hub data.
    """
    from xtreme_tasks.fingerprints import UDPOS_HUB_SAME, fingerprint

    if lang in UDPOS_HUB_SAME:
        return ""
    fp = fingerprint("udpos", lang)
    return (fp.hub_caveat if fp and fp.hub_caveat else "") or f"the hub's udpos.{UDPOS_HUB_NAMES[lang]} is not XTREME's data"


def hub(task: str, lang: str, split: str, revision: str) -> list[dict]:
    """The hub's ``udpos.<Language>`` where it is XTREME's data; elsewhere refused unless ``XTREME_UDPOS_FROM_HUB=1``.
    XTREME-R's UD v2.7 languages have no hub config: local data only."""
    if lang not in UDPOS_HUB_NAMES:
        raise DataError(
            f"UD-POS {lang}: {HUB_DATASET} has no config for it (XTREME-R reads {lang} from UD v{release_of(lang)}); "
            f"{use_local_instead(task, lang)}"
        )
    config = f"udpos.{UDPOS_HUB_NAMES[lang]}"
    caveat = hub_caveat(lang)
    if caveat and os.environ.get(HUB_OPT_IN_ENV, "").strip().lower() not in ("1", "true", "yes", "on"):
        raise DataError(
            f"UD-POS {lang}: refusing the hub copy, it is not XTREME's test set ({caveat}); "
            f"{use_local_instead(task, lang)}. To score on the hub copy anyway (recorded as not comparable), "
            f"set {HUB_OPT_IN_ENV}=1"
        )
    rows = list(hub_rows(task, lang, config, HUB_SPLITS.get(split, split), revision, "pos_tags", UPOS_TAGS))
    return _docs(drop_empty(rows, f"UD-POS {lang} {split} (hub {config})"), lang, split)
