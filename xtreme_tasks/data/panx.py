"""PAN-X (WikiANN): IOB2 named entities, PER / ORG / LOC.

Local layout under ``$XTREME_DATA_DIR`` (``download_data.sh`` output with labels kept)::

    panx/<split>-<lang>.tsv     token<TAB>tag, a blank line between sentences

``<split>`` is ``test``, ``dev`` or ``train``. The raw WikiANN files that XTREME
starts from prefix every token with its language (``en:Paris``);
``utils_preprocess.panx_preprocess`` cuts everything up to the first ``:``. A file
whose first token starts with ``<lang>:`` is treated as raw and the prefix is cut
from every token (a token without it is then an error); otherwise tokens are read
as they are, so a real token such as ``12:30`` is never cut.

Hub: ``google/xtreme`` config ``PAN-X.<lang>`` (``tokens``, ``ner_tags`` as class
ids named like the table's ``PANX_TAGS``); the same sentences as the official files.
"""

from __future__ import annotations

from pathlib import Path

from xtreme_tasks.data import DataError, require_file
from xtreme_tasks.data.hub import use_local_instead
from xtreme_tasks.data.conllu import read_word_tag_tsv
from xtreme_tasks.data.udpos import HUB_SPLITS, SPLIT_FILES, drop_empty, hub_rows
from xtreme_tasks.table import HUB_DATASET, PANX_TAGS, XTREME_R_ADDED


def _docs(rows, lang: str, split: str) -> list[dict]:
    return [
        {"id": f"panx-{lang}-{split}-{i}", "words": words, "tags": tags}
        for i, (_where, words, tags) in enumerate(rows)
    ]


def read_tsv(path: Path, lang: str, split: str) -> list[dict]:
    """Documents from ``panx/<split>-<lang>.tsv`` (labels kept; ``lang:`` prefixes cut)."""
    rows = read_word_tag_tsv(path, PANX_TAGS, what=f"PAN-X {split}-{lang}.tsv", strip_prefix=f"{lang}:")
    return _docs(rows, lang, split)


def local(root: Path, task: str, lang: str, split: str) -> list[dict]:
    path = require_file(root / "panx" / f"{SPLIT_FILES.get(split, split)}-{lang}.tsv", f"PAN-X {split} file")
    return read_tsv(path, lang, split)


def hub(task: str, lang: str, split: str, revision: str) -> list[dict]:
    if lang in XTREME_R_ADDED["panx"]:
        raise DataError(f"PAN-X {lang}: {HUB_DATASET} has PAN-X configs for XTREME's 40 languages only, not for "
                        f"XTREME-R's {lang}; {use_local_instead(task, lang)}")
    config = f"PAN-X.{lang}"
    rows = list(hub_rows(task, lang, config, HUB_SPLITS.get(split, split), revision, "ner_tags", PANX_TAGS))
    return _docs(drop_empty(rows, f"PAN-X {lang} {split} (hub {config})"), lang, split)
