"""Recompute the UD-POS rows of xtreme_tasks/fingerprints.py from an unpacked UD v2.5 release.

    python scripts/udpos_v25_table.py /path/to/ud-treebanks-v2.5

For every UD-POS language of XTREME it prints: XTREME's test size (treebanks selected by the
file-name language code and read with this project's reproduction of XTREME's conversion), the
order-free text hash that ``xtreme_tasks.fingerprints.digest`` computes, the treebanks, the size
the hub builder's rule gives on the same files (``_<Language>`` in the path; tokens whose FORM
and UPOS are not ``_``), which must equal the hub card's, and whether the hub's sentences are
XTREME's. This is how the table was made (from each treebank's git tag ``r2.5``).
"""

from __future__ import annotations

import csv
import logging
import sys
from pathlib import Path

from xtreme_tasks.data import udpos
from xtreme_tasks.fingerprints import HUB_TEST_SIZES, digest
from xtreme_tasks.table import TASKS, UDPOS_HUB_NAMES


def hub_rule(paths: list[Path]) -> list[dict]:
    """What the google/xtreme builder yields for these files (its UdposParser, re-stated)."""
    docs = []
    for path in paths:
        words: list[str] = []
        tags: list[str] = []
        with path.open(encoding="utf-8") as handle:
            for row in csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE):
                if len(row) >= 10 and row[1] != "_" and row[3] != "_":
                    words.append(row[1])
                    tags.append(row[3])
                if len(row) == 0 and words:
                    docs.append({"words": words, "tags": tags})
                    words, tags = [], []
    return docs


def main(root: Path) -> None:
    logging.disable(logging.WARNING)
    tests = sorted(root.glob("UD_*/*-ud-test.conllu"))
    for lang in TASKS["udpos"].languages:
        mine = sorted((p for p in tests if udpos.treebank_language(p) == lang), key=lambda p: p.name)
        docs, _ = udpos.read_conllu_files(mine, lang, "test")
        name = UDPOS_HUB_NAMES[lang]
        hub_files = [p for p in tests if f"_{name}" in str(p.relative_to(root))
                     and not (lang == "ar" and "NYUAD" in str(p))]
        hub_docs = hub_rule(hub_files)
        card = HUB_TEST_SIZES[f"udpos.{name}"]
        print(
            f"{lang}\t{len(docs)}\t{digest('udpos', docs)}\t{','.join(p.parent.name for p in mine)}\t"
            f"hub rule {len(hub_docs)} (card {card}{', OK' if len(hub_docs) == card else ', MISMATCH'})\t"
            f"hub same: {digest('udpos', hub_docs) == digest('udpos', docs)}"
        )


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(Path(sys.argv[1]))
