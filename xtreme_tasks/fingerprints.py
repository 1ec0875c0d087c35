"""Fingerprints of XTREME's test sets: how many examples each (task, language) has, and where
that number comes from; a short hash of the texts where a verbatim copy of the source exists.

Every load, hub or local, is checked against this table (:func:`check`, called by
``xtreme_tasks.data.load_docs``). A mismatch is one warning naming the task, the language,
both counts and the likely cause; the task records the result in the results JSON
(``configs.<leaf>.metadata.test_set``) and ``xtreme-eval report`` marks such rows as not
comparable. ``XTREME_STRICT_TEST_SETS=1`` (or the model argument ``strict_test_sets=true``)
turns a mismatch into an error. ``--limit`` is applied by lm-eval after loading, so a
limited run is checked on the whole test set and stays "standard".

A count is never guessed: where no source states it, ``count`` is None and ``source``
says why (such a set is "unchecked", neither standard nor not). ``docs/test_sets.md`` is
generated from this table by ``python -m xtreme_tasks.generate`` (a test fails on drift).

Sources, cited per entry:

* ``HUB_CARD``: the split sizes the ``google/xtreme`` builder recorded when it ran
  (``datasets/xtreme/dataset_infos.json`` in github.com/huggingface/datasets at commit
  040102f100, the metadata the hub viewer shows);
* the verbatim public copies in ``../shared/data`` (LASER ``data/tatoeba/v1``,
  ``deepmind/xquad``), counted and hashed with this project's readers.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from typing import Any, Iterable

from xtreme_tasks.table import TABLE, TASKS, TATOEBA_ALL_CODES, UDPOS_RELEASE, XTREME_R_ADDED, get_task

log = logging.getLogger(__name__)

STRICT_ENV = "XTREME_STRICT_TEST_SETS"
HUB_CARD = (
    "google/xtreme builder's recorded split size (huggingface/datasets@040102f100 "
    "datasets/xtreme/dataset_infos.json, config {config}, split {split})"
)
TATOEBA_SOURCE = "line pairs in LASER data/tatoeba/v1 tatoeba.{code}-eng.* (counted from the verbatim copy in ../shared/data/tatoeba)"
XCOPA_SOURCE = ("examples in cambridgeltl/xcopa data/{lang}/test.{lang}.jsonl (counted and hashed from the verbatim copy "
                "in ../shared/data/xcopa); XCOPA paper: 500 test examples per language")
XCOPA_FILES = {  # lang: digest of the texts (first segment and choices), from ../shared/data/xcopa
    "et": "b0af239af2393233", "ht": "ca5974dbf139c1c6", "id": "b6a6437939c0cf59", "it": "9663169111fc539d",
    "qu": "70daa96b2e44a36a", "sw": "b5b064a5e383a367", "ta": "68e0d455d6d26873", "th": "2ff3c9fa833b6386",
    "tr": "b45bff92b48b9ae1", "vi": "2a5f5bfbe85ed9df", "zh": "71db00f45f2bd63a",
}
#: lang: hash of the leaf's documents (its questions and the whole 11-language candidate pool, uid + text),
#: from google-research-datasets/lareqa xquad-r/ (verbatim in ../shared/data/xquad_r)
LAREQA_DIGESTS = {
    "ar": "25bce1fcd386b0b7", "de": "49be25e7336dd8a3", "el": "08296995d75b6037", "en": "0287c00715a1276a",
    "es": "69393bb42352197b", "hi": "d08d3f9bacfcbbab", "ru": "bc439fde482a52e1", "th": "db34b5629b5383a4",
    "tr": "ccf506dd1e58801c", "vi": "6b5941e83a36a9e8", "zh": "dbf8d56914ee4d17",
}
LAREQA_HASHED = "; hashed with the pool of 13,014 candidate sentences from the verbatim copy in ../shared/data/xquad_r"
LAREQA_SOURCE = "questions in google-research-datasets/lareqa xquad-r/{lang}.json (XQuAD's 1,190 per language)"
XQUAD_SOURCE = "questions in deepmind/xquad xquad.{lang}.json (counted from the verbatim copy in ../shared/data/xquad); XQuAD paper: 1,190 question-answer pairs"


@dataclass(frozen=True)
class Fingerprint:
    """The official size of one test set (and a hash of its texts where known)."""

    task: str
    lang: str
    #: number of examples (unit below); None when no source states it
    count: int | None
    unit: str
    #: where ``count`` comes from, or why it is unknown
    source: str
    #: first 16 hex digits of sha256 over the texts (see :func:`digest`); None when not known
    digest: str | None = None
    #: what the hub copy is known to hold when it is not the official set, and why
    hub_caveat: str = ""


@dataclass(frozen=True)
class TestSetCheck:
    """The result of checking one loaded test set against its fingerprint."""

    task: str
    lang: str
    split: str
    origin: str
    #: True: matches; False: differs; None: could not be checked (unknown count, other split, no gold)
    standard: bool | None
    found: int | None
    expected: int | None
    unit: str
    message: str

    def as_metadata(self) -> dict[str, Any]:
        """What the results JSON records (``configs.<leaf>.metadata.test_set``)."""
        return {
            "standard": self.standard, "examples": self.found, "expected": self.expected,
            "unit": self.unit, "origin": self.origin, "note": self.message,
        }


# ----------------------------------------------------------------------------- the table
#: hub builder's recorded test sizes (HUB_CARD) that this table uses
HUB_TEST_SIZES: dict[str, int] = {
    "XNLI": 75150,
    **{f"PAWS-X.{l}": n for l, n in {"de": 2000, "en": 2000, "es": 2000, "fr": 2000, "ja": 2000, "ko": 1999, "zh": 2000}.items()},
    **{f"PAN-X.{l}": n for l, n in {
        "af": 1000, "ar": 10000, "bg": 10000, "bn": 1000, "de": 10000, "el": 10000, "en": 10000, "es": 10000,
        "et": 10000, "eu": 10000, "fa": 10000, "fi": 10000, "fr": 10000, "he": 10000, "hi": 1000, "hu": 10000,
        "id": 10000, "it": 10000, "ja": 10000, "jv": 100, "ka": 10000, "kk": 1000, "ko": 10000, "ml": 1000,
        "mr": 1000, "ms": 1000, "my": 100, "nl": 10000, "pt": 10000, "ru": 10000, "sw": 1000, "ta": 1000,
        "te": 1000, "th": 10000, "tl": 1000, "tr": 10000, "ur": 1000, "vi": 10000, "yo": 100, "zh": 10000,
    }.items()},
    **{f"MLQA.{l}.{l}": n for l, n in {
        "en": 11590, "es": 5253, "de": 4517, "ar": 5335, "hi": 4918, "vi": 5495, "zh": 5137,
    }.items()},
    **{f"bucc18.{l}": n for l, n in {"de": 9580, "fr": 9086, "ru": 14435, "zh": 1899}.items()},
    **{f"udpos.{name}": n for name, n in {
        "Afrikaans": 425, "Arabic": 1680, "Basque": 1799, "Bulgarian": 1116, "Dutch": 1471, "English": 5440,
        "Estonian": 3760, "Finnish": 4422, "French": 9465, "German": 22458, "Greek": 2809, "Hebrew": 491,
        "Hindi": 2684, "Hungarian": 449, "Indonesian": 1557, "Italian": 3518, "Japanese": 2372, "Kazakh": 1047,
        "Korean": 4276, "Chinese": 5528, "Marathi": 47, "Persian": 600, "Portuguese": 2681, "Russian": 11336,
        "Spanish": 3147, "Tagalog": 55, "Tamil": 120, "Telugu": 146, "Thai": 1000, "Turkish": 4785,
        "Urdu": 535, "Vietnamese": 800, "Yoruba": 100,
    }.items()},
}

TATOEBA_FILES = {  # lang: (pairs, digest) counted/hashed from LASER data/tatoeba/v1 (verbatim in ../shared/data/tatoeba)
    "af": (1000, "129e289e33414022"), "amh": (168, "88ba0f2fa91c47a8"), "ang": (134, "80a92751ad36b3cb"),
    "ar": (1000, "e62f3f1ffc196f3f"), "arq": (911, "641f06c9df806dbd"), "arz": (477, "ab7ce1af53432f11"),
    "ast": (127, "0c45b77a3bd391cf"), "awa": (231, "42b4c2f2cdea36c6"), "az": (1000, "6cc07e985e235559"),
    "bel": (1000, "6d84dbad5fb7c09d"), "bn": (1000, "a54b6864a29978c7"), "ber": (1000, "04b14760100be3e1"),
    "bos": (354, "5c08cbb27fc0d181"), "bre": (1000, "a7b4cbd4bc302c90"), "bg": (1000, "343526c2208e5695"),
    "cat": (1000, "6ce264430fa8d783"), "cbk": (1000, "0f943089eb7c6984"), "ceb": (600, "9650a48d0bb21e72"),
    "ces": (1000, "3f7900a5756cf7b9"), "cha": (137, "23e0e079a145b932"), "zh": (1000, "80e4e6155f728588"),
    "cor": (1000, "e4cf04600135e49e"), "csb": (253, "773061b7d0eefdf3"), "cym": (575, "47773d8464191398"),
    "dan": (1000, "03b02a665923938d"), "de": (1000, "5b1c546338259632"), "dsb": (479, "32c318eea84c66c0"),
    "dtp": (1000, "a5cf210b8fe96631"), "el": (1000, "3a28552a2051cd94"), "epo": (1000, "192a56e8fc7cd851"),
    "et": (1000, "de887d12910674ec"), "eu": (1000, "8d44a21ee99dbfb6"), "fao": (262, "859ed11d2c58bb90"),
    "fi": (1000, "a0c6b5d97d71af6e"), "fr": (1000, "cda2403d1bccf75e"), "fry": (173, "271d32e2c842ce54"),
    "gla": (829, "a4591329f6ff775d"), "gle": (1000, "b4034c84ffb03cf5"), "glg": (1000, "46ed8479049be424"),
    "gsw": (117, "bc9bfdc073e24d6d"), "he": (1000, "0157c8969bfaa284"), "hi": (1000, "81395edd35728be3"),
    "hrv": (1000, "04bc44da399ce4e0"), "hsb": (483, "248020c6efa43519"), "hu": (1000, "4b8c18bcdbcdeb05"),
    "hye": (742, "2182be81f9d93886"), "ido": (1000, "9e344a5dab3a822e"), "ile": (1000, "7906eb222bb15bae"),
    "ina": (1000, "d53eb769eea484f0"), "id": (1000, "fa9d93cdeef28066"), "isl": (1000, "260668e8e541bd11"),
    "it": (1000, "02a69233af0a5e56"), "jv": (205, "f958c3d4e6e43b99"), "ja": (1000, "2380b5ba1bb6b677"),
    "kab": (1000, "1cd784b4f41e7e47"), "ka": (746, "e0b84552fe149c9c"), "kk": (575, "d2dedcade85ddc43"),
    "khm": (722, "2677887779b862df"), "ko": (1000, "d2dbbbfaef73f567"), "kur": (410, "88350b071e37bc14"),
    "kzj": (1000, "fc170c02f64bec5e"), "lat": (1000, "984eaa493fc005eb"), "lfn": (1000, "62a515e98c3fb1b6"),
    "lt": (1000, "8af3b1356d35c7fa"), "lvs": (1000, "c3e7b297ea1eda2f"), "ml": (687, "091c88334af3fe77"),
    "mr": (1000, "a985cd8c94087dc5"), "max": (284, "8642a85f132d00a1"), "mhr": (1000, "cb78a0785c083ba9"),
    "mkd": (1000, "e61f48622472f9a1"), "mon": (440, "31ac9c571c656cc9"), "nds": (1000, "ee888d140dc641fe"),
    "nl": (1000, "d1ee44069f11b8ad"), "nno": (1000, "9c50c50a298e10b0"), "nob": (1000, "dfba7a4ebff9f54b"),
    "nov": (257, "f6586a5ac6d4f32c"), "oci": (1000, "d35808ca38d59faf"), "orv": (835, "7e6cad89eaf62372"),
    "pam": (1000, "7f8d6535f359fef1"), "fa": (1000, "dbee5018d9e815b0"), "pms": (525, "ea759ea0c8f6d09f"),
    "pl": (1000, "1e851890c4cc1a80"), "pt": (1000, "8f34f84e08c88b2a"), "ro": (1000, "7b8703a150e8f213"),
    "ru": (1000, "4c9611337d26d6d6"), "slk": (1000, "d5bd9e7d66037112"), "slv": (823, "f42299659cc9fb50"),
    "es": (1000, "a7c1b9067be90b7f"), "sqi": (1000, "1785da94e756ea21"), "srp": (1000, "16c0bd16f05ca19b"),
    "swe": (1000, "2cfbea7fd7b4637f"), "swg": (112, "b64d8c100e437be9"), "sw": (390, "28f65110d0a5182a"),
    "ta": (307, "4f0b8557aea24cb6"), "tat": (1000, "75ead2a26a78d14a"), "te": (234, "cc692184cca717e2"),
    "tl": (1000, "cdb869159922f954"), "th": (548, "b7d14847ad317c42"), "tuk": (203, "86bc8af5133cbd0c"),
    "tr": (1000, "c51c1251d42afa13"), "tzl": (104, "01d76447044a117b"), "uig": (1000, "3cf94453bc2effaf"),
    "uk": (1000, "3aeac2c4078198ef"), "ur": (1000, "d8c51806012626e6"), "uzb": (428, "a6a75336e20c1b18"),
    "vi": (1000, "a4c215b15b91c222"), "war": (1000, "6d9ecc73e2106922"), "wuu": (1000, "eac6346fc8c928c1"),
    "xho": (142, "2792776c81b2e3c8"), "yid": (848, "7a50ea192bfa12e2"), "yue": (1000, "4d1bef22d3421972"),
    "zsm": (1000, "f1eb58519e68c6e6"),
}
XQUAD_FILES = {  # lang: (questions, digest) counted/hashed from deepmind/xquad (verbatim in ../shared/data/xquad)
    "ar": (1190, "c6dca612f8dbd35b"),
    "de": (1190, "26d8f859f419575d"),
    "el": (1190, "ab808538cf20e6fc"),
    "en": (1190, "b516d4d7f3223170"),
    "es": (1190, "b7c61ca3f9b09556"),
    "hi": (1190, "a556b17672e0f013"),
    "ro": (1190, "ae77b9a1b74a73b5"),
    "ru": (1190, "ca342e10711dead7"),
    "th": (1190, "5f0a42ee90813345"),
    "tr": (1190, "fc7703538f84bdea"),
    "vi": (1190, "cdbb4591906d285b"),
    "zh": (1190, "e78ff88cf9604ea9"),
}

#: XTREME's UD-POS test sets counted from UD v2.5 (see UDPOS_SOURCE): lang -> (sentences, digest, treebanks)
UDPOS_V25: dict[str, tuple[int, str, tuple[str, ...]]] = {
    "af": (425, "bd59afbc6b48944c", ('Afrikaans-AfriBooms',)),
    "bg": (1116, "35a24f6ce5aea353", ('Bulgarian-BTB',)),
    "el": (456, "2d06228a534f16bf", ('Greek-GDT',)),
    "en": (5440, "b5b5608caf7b4177", ('English-ESL', 'English-EWT', 'English-GUM', 'English-LinES', 'English-ParTUT', 'English-Pronouns', 'English-PUD')),
    "es": (3147, "2f25a09acf6090fd", ('Spanish-AnCora', 'Spanish-GSD', 'Spanish-PUD')),
    "et": (3760, "c9bfe7c6c942cb91", ('Estonian-EDT', 'Estonian-EWT')),
    "eu": (1799, "5a20795b673658df", ('Basque-BDT',)),
    "fa": (600, "cc4fdc4ca814a3c1", ('Persian-Seraji',)),
    "fi": (4422, "5d4ad3c1e7b76ef7", ('Finnish-FTB', 'Finnish-PUD', 'Finnish-TDT')),
    "fr": (5009, "637bb3d4d3fb4224", ('French-FQB', 'French-FTB', 'French-GSD', 'French-ParTUT', 'French-PUD', 'French-Sequoia', 'French-Spoken')),
    "he": (491, "4f2d7427acac9bbe", ('Hebrew-HTB',)),
    "hu": (449, "64ee704c2f5cccee", ('Hungarian-Szeged',)),
    "id": (1557, "d3347d5860177b36", ('Indonesian-GSD', 'Indonesian-PUD')),
    "it": (3518, "65d7d512c1f85c58", ('Italian-ISDT', 'Italian-ParTUT', 'Italian-PoSTWITA', 'Italian-PUD', 'Italian-TWITTIRO', 'Italian-VIT')),
    "kk": (1047, "bb0ca1113113ceb1", ('Kazakh-KTB',)),
    "ko": (4276, "2311efaa08ddf2e2", ('Korean-GSD', 'Korean-Kaist', 'Korean-PUD')),
    "mr": (47, "67eacd26e749ef33", ('Marathi-UFAL',)),
    "nl": (1471, "206ed7d5d3793186", ('Dutch-Alpino', 'Dutch-LassySmall')),
    "pt": (2681, "1581ba3dcc034bfe", ('Portuguese-Bosque', 'Portuguese-GSD', 'Portuguese-PUD')),
    "ta": (120, "18333281c13bdba1", ('Tamil-TTB',)),
    "te": (146, "d13ad611b90d6f33", ('Telugu-MTG',)),
    "th": (1000, "5920da8ca168ef1e", ('Thai-PUD',)),
    "tl": (55, "889e372eb2fd60f0", ('Tagalog-TRG',)),
    "tr": (4785, "aa3c871fb4010daf", ('Turkish-GB', 'Turkish-IMST', 'Turkish-PUD')),
    "ur": (535, "35843e7d91d18253", ('Urdu-UDTB',)),
    "vi": (800, "47d5495e4424fc1e", ('Vietnamese-VTB',)),
    "yo": (100, "cac30e466c42f5f0", ('Yoruba-YTB',)),
    "zh": (3455, "564004936b54ee72", ('Chinese-CFL', 'Chinese-GSD', 'Chinese-GSDSimp', 'Chinese-HK', 'Chinese-PUD')),
}
#: languages whose hub config, simulated on the same r2.5 files, holds exactly XTREME's sentences
UDPOS_HUB_SAME = frozenset({"af", "bg", "eu", "hu", "id", "ko", "te", "th", "tl", "ur", "yo"})
#: languages whose count is unknown: the r2.5 test file of this treebank was not in the snapshot available
UDPOS_ABSENT = {"ar": "Arabic-PADT", "de": "German-HDT", "hi": "Hindi-HDTB", "ja": "Japanese-BCCWJ", "ru": "Russian-SynTagRus"}
UDPOS_SOURCE = (
    "sentences of XTREME's pooled UD v2.5 test set ({treebanks}), counted from each treebank's test file at git "
    "tag r2.5 of github.com/UniversalDependencies/UD_<treebank> with this project's reproduction of XTREME's "
    "conversion (sentences with hidden forms dropped, as udpos_preprocess does); the hub builder's rule applied "
    "to the same files gives the hub card's {hub:,}, so no treebank of the release is missing"
)
UDPOS_HUB_CAVEAT = (
    "the hub's udpos.{name} test has {n} sentences ({card}); its builder pools every UD v2.5 treebank whose "
    "path contains '_{name}' (XTREME selects by the file's language code, e.g. {lang}_*-ud-test.conllu), "
    "splits multi-word tokens into syntactic words and keeps spaces inside words, so for this language it "
    "is not XTREME's data"
)
#: what the name rule is known to pull in (Ancient Greek: UD_Ancient_Greek-PROIEL/-Perseus contain "_Greek")
UDPOS_HUB_EXTRA = {"el": "; udpos.Greek includes the Ancient Greek treebanks (grc_proiel, grc_perseus)"}
#: UD v2.7 treebanks of XTREME-R's added UD-POS languages (file-name code = the language, as
#: download_data.sh selects them); their test files were not available here, so no count is given
UDPOS_V27_TREEBANKS = {
    "lt": ("Lithuanian-ALKSNIS", "Lithuanian-HSE"), "pl": ("Polish-LFG", "Polish-PDB", "Polish-PUD"),
    "uk": ("Ukrainian-IU",), "wo": ("Wolof-WTB",), "ro": ("Romanian-Nonstandard", "Romanian-RRT", "Romanian-SiMoNERo"),
}
XNLI_PAWSX_HUB_CAVEAT = (
    "the hub builder reads the raw TSV with CSV quoting, so a sentence that starts with a double quote loses "
    "its quotes (XTREME splits lines on tabs)"
)


def _card(config: str, split: str = "test") -> str:
    return HUB_CARD.format(config=config, split=split)


def _build() -> dict[tuple[str, str], Fingerprint]:
    from xtreme_tasks.table import UDPOS_HUB_NAMES

    table: dict[tuple[str, str], Fingerprint] = {}

    def add(task: str, lang: str, count: int | None, unit: str, source: str, **extra: Any) -> None:
        table[(task, lang)] = Fingerprint(task, lang, count, unit, source, **extra)

    for lang in TASKS["xnli"].languages:
        add("xnli", lang, 5010, "sentence pairs",
            "XNLI 1.0 test: 5,010 pairs per language (XNLI paper; " + _card("XNLI") + ": 75,150 = 15 x 5,010)",
            hub_caveat=XNLI_PAWSX_HUB_CAVEAT)
    for lang in TASKS["pawsx"].languages:
        config = f"PAWS-X.{lang}"
        if HUB_TEST_SIZES[config] == 2000:
            add("pawsx", lang, 2000, "sentence pairs", "x-final test_2k.tsv; " + _card(config) + ": 2,000",
                hub_caveat=XNLI_PAWSX_HUB_CAVEAT)
        else:
            add("pawsx", lang, None, "sentence pairs",
                f"unknown: {_card(config)} records {HUB_TEST_SIZES[config]:,}, but that builder reads with CSV "
                f"quoting and drops rows without 4 fields, so it can lose a row that XTREME's tab split keeps; "
                f"no other source states the size",
                hub_caveat=f"the hub's {config} test has {HUB_TEST_SIZES[config]:,} rows; " + XNLI_PAWSX_HUB_CAVEAT)
    for lang in TASKS["udpos"].languages:
        name = UDPOS_HUB_NAMES[lang]
        n = HUB_TEST_SIZES[f"udpos.{name}"]
        caveat = "" if lang in UDPOS_HUB_SAME else (
            UDPOS_HUB_CAVEAT.format(name=name, n=f"{n:,}", card=_card(f"udpos.{name}"), lang=lang)
            + UDPOS_HUB_EXTRA.get(lang, ""))
        if lang in UDPOS_V25:
            count, dg, treebanks = UDPOS_V25[lang]
            add("udpos", lang, count, "sentences", UDPOS_SOURCE.format(treebanks=", ".join(treebanks), hub=n),
                digest=dg, hub_caveat=caveat)
        else:
            add("udpos", lang, None, "sentences",
                f"unknown: the UD v2.5 (git tag r2.5) test file of UD_{UDPOS_ABSENT[lang]} was not in the repository "
                f"snapshot available to us, so XTREME's pooled test set could not be counted",
                hub_caveat=caveat)
    for lang in XTREME_R_ADDED["udpos"]:
        add("udpos", lang, None, "sentences",
            f"unknown: XTREME-R reads this language from UD v{UDPOS_RELEASE[lang]} "
            f"({', '.join(UDPOS_V27_TREEBANKS[lang])}); those test files were not available to us to count, "
            "and the google/xtreme hub has no config for it")
    for lang in TASKS["panx"].languages:
        add("panx", lang, HUB_TEST_SIZES[f"PAN-X.{lang}"], "sentences",
            _card(f"PAN-X.{lang}") + "; the builder reads the Rahimi et al. (2019) split files that XTREME uses")
    for lang in XTREME_R_ADDED["panx"]:
        add("panx", lang, None, "sentences",
            "unknown: an XTREME-R language of the Rahimi et al. (2019) split; the google/xtreme hub has no "
            f"PAN-X.{lang} config and no verbatim copy was available to count")
    for lang in TASKS["xquad"].all_languages:
        n, dg = XQUAD_FILES[lang]
        add("xquad", lang, n, "questions", XQUAD_SOURCE.format(lang=lang), digest=dg)
    for lang in TASKS["mlqa"].languages:
        config = f"MLQA.{lang}.{lang}"
        add("mlqa", lang, HUB_TEST_SIZES[config], "questions", _card(config) + " (context and question in " + lang + ")")
    for lang in TASKS["tydiqa"].languages:
        add("tydiqa", lang, None, "questions",
            "unknown: no source found for the per-language size of the TyDiQA-GoldP dev set; the hub card gives "
            "only the total over the 9 languages, 5,077 (" + _card("tydiqa", "validation") + ")")
    for lang in TASKS["bucc2018"].languages:
        add("bucc2018", lang, HUB_TEST_SIZES[f"bucc18.{lang}"], "gold pairs",
            f"gold pairs of bucc2018-{lang}-en.training-gold (XTREME's test split); " + _card(f"bucc18.{lang}"),
            hub_caveat=f"the hub's bucc18.{lang} holds only the gold pairs, without the distractor sentences")
    for lang in TASKS["tatoeba"].all_languages:
        n, dg = TATOEBA_FILES[lang]
        code = TATOEBA_ALL_CODES.get(lang, lang)
        source = TATOEBA_SOURCE.format(code=code)
        if lang in TASKS["tatoeba"].languages:
            source += f"; equal to {_card(f'tatoeba.{code}', 'validation')}"
        add("tatoeba", lang, n, "sentence pairs", source, digest=dg)
    for lang in TABLE["xcopa"].languages:
        add("xcopa", lang, 500, "examples", XCOPA_SOURCE.format(lang=lang), digest=XCOPA_FILES[lang])
    for lang in TABLE["lareqa"].languages:
        add("lareqa", lang, 1190, "questions", LAREQA_SOURCE.format(lang=lang) + LAREQA_HASHED,
            digest=LAREQA_DIGESTS[lang])
    for lang in TABLE["mewslix"].languages:
        add("mewslix", lang, None, "mentions",
            "unknown: the official test file (wikinews_mentions-test.jsonl, written by get-mewsli-x.sh) could "
            "not be obtained here to count")
    return table


FINGERPRINTS: dict[tuple[str, str], Fingerprint] = _build()


def fingerprint(task: str, lang: str) -> Fingerprint | None:
    return FINGERPRINTS.get((task, lang))


# ----------------------------------------------------------------------------- counting and hashing
def count_examples(task: str, docs: list[dict]) -> int | None:
    """The table's unit for ``task`` counted in ``docs`` (None when it cannot be counted)."""
    if task == "bucc2018":
        xx = [d for d in docs if d.get("side") == "xx"]
        if any(d.get("gold") is None for d in xx):
            return None  # XTREME's download deletes the test gold: nothing to count
        return sum(len(d["gold"]) for d in xx)
    if task in ("lareqa", "mewslix"):  # a leaf's queries; the shared candidate pool is not counted
        return sum(d.get("role") in ("question", "mention") for d in docs)
    return len(docs)


def _short_sha(lines: Iterable[str]) -> str:
    return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()[:16]


def digest(task: str, docs: list[dict]) -> str | None:
    """A short hash of the texts, for the tasks whose table entries carry one."""
    if task == "tatoeba":
        return _short_sha(f"{d['src']}\t{d['tgt']}" for d in docs)
    if task == "xquad":
        return _short_sha(sorted(f"{d['id']}\t{d['question'].strip()}" for d in docs))
    if task == "xcopa":  # texts only: XTREME-R's download zeroes the test labels, the texts stay XCOPA's
        return _short_sha(f"{d['context']}\t" + "\t".join(d["choices"]) for d in docs)
    if task == "lareqa":  # the leaf's questions and the whole pool it ranks (both decide the score)
        return _short_sha(sorted(f"{d['uid']}\t{d['text']}" for d in docs))
    if task == "udpos":  # order-free: the hub pools treebanks in archive order, XTREME in file-name order
        return _short_sha(sorted(
            hashlib.sha256(json.dumps([d["words"], d["tags"]], ensure_ascii=False).encode("utf-8")).hexdigest()
            for d in docs
        ))
    return None


# ----------------------------------------------------------------------------- checking a load
def strict_from_env() -> bool:
    return os.environ.get(STRICT_ENV, "").strip().lower() in ("1", "true", "yes", "on")


#: the last check per (task, lang, split) in this process (read by the ``strict_test_sets`` model argument)
LAST_CHECKS: dict[tuple[str, str, str], TestSetCheck] = {}


def _likely_cause(fp: Fingerprint, origin: str) -> str:
    if origin == "hub" and fp.hub_caveat:
        return fp.hub_caveat
    if origin == "hub":
        return "the hub copy differs from the official files (another revision?)"
    if fp.task == "udpos":
        return "not every UD v2.5 treebank of the language is there, or the files come from another UD release"
    return "a different release, a partial or edited file, or a reader that dropped lines (check the file)"


def check(task: str, lang: str, split: str, docs: list[dict], origin: str, known_nonstandard: str = "") -> TestSetCheck:
    """Compare a loaded test set with the table; no logging, no raising (see :func:`enforce`)."""
    spec = get_task(task)
    fp = fingerprint(task, lang)
    unit = fp.unit if fp else "examples"
    found = count_examples(task, docs)

    def result(standard: bool | None, expected: int | None, message: str) -> TestSetCheck:
        return TestSetCheck(task, lang, split, origin, standard, found, expected, unit, message)

    if split != spec.split:
        return result(None, None, f"{spec.title} {lang}: split {split!r} is not the test set ({spec.split!r}); not checked")
    if known_nonstandard:
        return result(False, fp.count if fp else None, f"{spec.title} {lang}: not XTREME's test set: {known_nonstandard}")
    if fp is None:
        return result(None, None, f"{spec.title} {lang}: no fingerprint in xtreme_tasks/fingerprints.py; not checked")
    if fp.count is None:
        return result(None, None, f"{spec.title} {lang}: size not checked ({fp.source})")
    if found is None:
        return result(None, fp.count, f"{spec.title} {lang}: {fp.unit} cannot be counted (no gold file); not checked")
    if found != fp.count:
        return result(False, fp.count, (
            f"{spec.title} {lang}: the test set has {found:,} {fp.unit}, XTREME's has {fp.count:,} ({fp.source}); "
            f"likely cause: {_likely_cause(fp, origin)}"
        ))
    if fp.digest is not None:
        got = digest(task, docs)
        if got != fp.digest:
            return result(False, fp.count, (
                f"{spec.title} {lang}: {found:,} {fp.unit} as expected, but their texts differ from XTREME's "
                f"(hash {got}, expected {fp.digest}; {fp.source}); likely cause: {_likely_cause(fp, origin)}"
            ))
    return result(True, fp.count, f"{spec.title} {lang}: {found:,} {fp.unit}, as XTREME's ({fp.source})")


def enforce(result: TestSetCheck, strict: bool | None = None) -> TestSetCheck:
    """Warn about a non-standard test set; raise DataError instead in strict mode. Records the result."""
    from xtreme_tasks.data import DataError

    LAST_CHECKS[(result.task, result.lang, result.split)] = result
    if result.standard is False:
        if strict_from_env() if strict is None else strict:
            raise DataError(
                f"{result.message}. Refused: strict test-set checking is on ({STRICT_ENV}=1 or "
                f"strict_test_sets=true); use XTREME's test set, or turn strict checking off for a run "
                f"that is not a leaderboard submission"
            )
        log.warning("%s; scores on it are not comparable to XTREME results", result.message)
    elif result.standard is None:
        log.info("%s", result.message)
    return result


def refuse_if_nonstandard(task: str, lang: str) -> None:
    """Strict mode asked for by the model (``strict_test_sets=true``): raise if this test set was not XTREME's."""
    from xtreme_tasks.data import DataError

    for (t, l, _split), result in LAST_CHECKS.items():
        if (t, l) == (task, lang) and result.standard is False:
            raise DataError(
                f"{result.message}. Refused: strict_test_sets=true asks for XTREME's test sets only "
                f"(use XTREME's files, or drop strict_test_sets for a run that is not a leaderboard submission)"
            )


# ----------------------------------------------------------------------------- generated table
def render_markdown() -> str:
    """``docs/test_sets.md``: the table as a document (written by ``python -m xtreme_tasks.generate``)."""
    lines = [
        "<!-- Generated by `python -m xtreme_tasks.generate` from xtreme_tasks/fingerprints.py. Do not edit. -->",
        "# XTREME and XTREME-R test sets: expected sizes",
        "",
        "Every load (hub or local) is checked against these numbers; see docs/data.md. `unknown` means no",
        "source states the size: such a set is loaded and scored but recorded as unchecked.",
        "Languages outside both benchmarks' scores (LASER's other Tatoeba languages) are marked *extra*;",
        "XTREME-R's additions to XTREME's tasks are marked *XTREME-R*, and its own tasks follow XTREME's nine.",
        "",
        "| task | language | examples | unit | text hash | source |",
        "|---|---|---|---|---|---|",
    ]
    for task, spec in TABLE.items():
        for lang in spec.all_languages:
            fp = FINGERPRINTS[(task, lang)]
            added = lang in XTREME_R_ADDED.get(task, ())
            name = lang if lang in spec.languages else f"{lang} *XTREME-R*" if added else f"{lang} *extra*"
            count = f"{fp.count:,}" if fp.count is not None else "unknown"
            source = fp.source.replace("|", "/")
            if fp.hub_caveat:
                source += f". Hub: {fp.hub_caveat.replace('|', '/')}"
            lines.append(f"| {spec.title} | {name} | {count} | {fp.unit} | {fp.digest or ''} | {source} |")
    return "\n".join(lines) + "\n"
