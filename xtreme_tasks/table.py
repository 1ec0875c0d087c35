"""The one table of XTREME tasks x languages.

Everything per-language (the generated lm-eval YAML, the hub config names, the
report's column order) is derived from this file. To add a language, add it to
the task's ``languages`` (or ``extra_languages`` when it is not part of the
official XTREME score) and run ``python -m xtreme_tasks.generate``.
To add a task, add a ``TaskSpec`` here, a loader in ``xtreme_tasks/data/`` and,
if it needs a new request kind, a task class in ``harness_ext/tasks/``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Category = Literal["classification", "structured_prediction", "qa", "retrieval"]
RequestKind = Literal["classify", "tag", "extract_span", "embed"]

#: Hub dataset holding most XTREME configs. ``HUB_REVISION`` is the revision loaders ask for;
#: override with the environment variable ``XTREME_HUB_REVISION``. NOT PINNED: it should be the
#: commit of the February 2024 parquet conversion of google/xtreme, but no such sha could be
#: verified from the public sources searched (docs/data.md, "Known gaps"); none is invented here.
HUB_DATASET = "google/xtreme"
HUB_REVISION = "main"


@dataclass(frozen=True)
class TaskSpec:
    """What one XTREME task is: its languages, request kind and metrics."""

    name: str
    title: str
    category: Category
    request_kind: RequestKind
    languages: tuple[str, ...]
    #: metrics reported per language; the first is the task's headline metric
    metrics: tuple[str, ...]
    #: QA tasks score (EM + F1) / 2; others use the first metric
    score_metrics: tuple[str, ...]
    #: languages we support that are outside the official XTREME score; they are
    #: leaf tasks and members of the group ``xtreme-<task>-all``, not of ``xtreme_<task>``
    extra_languages: tuple[str, ...] = ()
    #: labels for classification / tag set for tagging, in the canonical order
    labels: tuple[str, ...] = ()
    split: str = "test"
    notes: str = ""
    hub_configs: dict[str, str] = field(default_factory=dict)

    @property
    def group(self) -> str:
        return f"xtreme_{self.name}"

    def leaf(self, lang: str) -> str:
        return f"xtreme-{self.name}-{lang}"

    @property
    def all_languages(self) -> tuple[str, ...]:
        return self.languages + self.extra_languages


UPOS_TAGS = (
    "ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM",
    "PART", "PRON", "PROPN", "PUNCT", "SCONJ", "SYM", "VERB", "X",
)
PANX_TAGS = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC")
XNLI_LABELS = ("entailment", "neutral", "contradiction")
PAWSX_LABELS = ("0", "1")

#: UD-POS language code -> the hub's ``udpos.<Language>`` config suffix
UDPOS_HUB_NAMES = {
    "af": "Afrikaans", "ar": "Arabic", "bg": "Bulgarian", "de": "German", "el": "Greek",
    "en": "English", "es": "Spanish", "et": "Estonian", "eu": "Basque", "fa": "Persian",
    "fi": "Finnish", "fr": "French", "he": "Hebrew", "hi": "Hindi", "hu": "Hungarian",
    "id": "Indonesian", "it": "Italian", "ja": "Japanese", "kk": "Kazakh", "ko": "Korean",
    "mr": "Marathi", "nl": "Dutch", "pt": "Portuguese", "ru": "Russian", "ta": "Tamil",
    "te": "Telugu", "th": "Thai", "tl": "Tagalog", "tr": "Turkish", "ur": "Urdu",
    "vi": "Vietnamese", "yo": "Yoruba", "zh": "Chinese",
}

#: XTREME two-letter code -> LASER/Tatoeba three-letter code
TATOEBA_CODES = {
    "af": "afr", "ar": "ara", "bg": "bul", "bn": "ben", "de": "deu", "el": "ell",
    "es": "spa", "et": "est", "eu": "eus", "fa": "pes", "fi": "fin", "fr": "fra",
    "he": "heb", "hi": "hin", "hu": "hun", "id": "ind", "it": "ita", "ja": "jpn",
    "jv": "jav", "ka": "kat", "kk": "kaz", "ko": "kor", "ml": "mal", "mr": "mar",
    "nl": "nld", "pt": "por", "ru": "rus", "sw": "swh", "ta": "tam", "te": "tel",
    "th": "tha", "tl": "tgl", "tr": "tur", "ur": "urd", "vi": "vie", "zh": "cmn",
}

#: every language of LASER's Tatoeba test set (three-letter codes, as in its file names)
LASER_LANGUAGES: tuple[str, ...] = tuple(
    "afr amh ang ara arq arz ast awa aze bel ben ber bos bre bul cat cbk ceb ces cha cmn cor csb cym "
    "dan deu dsb dtp ell epo est eus fao fin fra fry gla gle glg gsw heb hin hrv hsb hun hye ido ile "
    "ina ind isl ita jav jpn kab kat kaz khm kor kur kzj lat lfn lit lvs mal mar max mhr mkd mon nds "
    "nld nno nob nov oci orv pam pes pms pol por ron rus slk slv spa sqi srp swe swg swh tam tat tel "
    "tgl tha tuk tur tzl uig ukr urd uzb vie war wuu xho yid yue zsm".split()
)
#: LASER languages outside XTREME's 36: Tatoeba's extra group ``xtreme-tatoeba-all`` (112 in all)
LASER_EXTRA: tuple[str, ...] = tuple(c for c in LASER_LANGUAGES if c not in set(TATOEBA_CODES.values()))

TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in (
        TaskSpec(
            name="xnli", title="XNLI", category="classification", request_kind="classify",
            languages=tuple("ar bg de el en es fr hi ru sw th tr ur vi zh".split()),
            metrics=("acc",), score_metrics=("acc",), labels=XNLI_LABELS,
        ),
        TaskSpec(
            name="pawsx", title="PAWS-X", category="classification", request_kind="classify",
            languages=tuple("de en es fr ja ko zh".split()),
            metrics=("acc",), score_metrics=("acc",), labels=PAWSX_LABELS,
        ),
        TaskSpec(
            name="udpos", title="UD-POS", category="structured_prediction", request_kind="tag",
            languages=tuple(
                "af ar bg de el en es et eu fa fi fr he hi hu id it ja kk ko mr nl pt ru "
                "ta te th tl tr ur vi yo zh".split()
            ),
            metrics=("f1", "token_acc"), score_metrics=("f1",), labels=UPOS_TAGS,
            notes="seqeval 0.0.12 span F1 (the official number); token accuracy as a second metric",
        ),
        TaskSpec(
            name="panx", title="PAN-X", category="structured_prediction", request_kind="tag",
            languages=tuple(
                "ar he vi id jv ms tl eu ml ta te af nl en de el bn hi mr ur fa fr it pt es "
                "bg ru ja ka ko th sw yo my zh kk tr et fi hu".split()
            ),
            metrics=("f1", "precision", "recall"), score_metrics=("f1",), labels=PANX_TAGS,
        ),
        TaskSpec(
            name="xquad", title="XQuAD", category="qa", request_kind="extract_span",
            languages=tuple("en es de el ru tr ar vi th zh hi".split()),
            extra_languages=("ro",),
            metrics=("f1", "em"), score_metrics=("em", "f1"),
            notes="ro is XTREME-R's addition: available, outside the XTREME score",
        ),
        TaskSpec(
            name="mlqa", title="MLQA", category="qa", request_kind="extract_span",
            languages=tuple("en es de ar hi vi zh".split()),
            metrics=("f1", "em"), score_metrics=("em", "f1"),
        ),
        TaskSpec(
            name="tydiqa", title="TyDiQA-GoldP", category="qa", request_kind="extract_span",
            languages=tuple("en ar bn fi id ko ru sw te".split()),
            metrics=("f1", "em"), score_metrics=("em", "f1"), split="validation",
            notes="test = the GoldP dev split, selected by id prefix",
        ),
        TaskSpec(
            name="bucc2018", title="BUCC 2018", category="retrieval", request_kind="embed",
            languages=tuple("de fr ru zh".split()),
            metrics=("f1", "precision", "recall"), score_metrics=("f1",),
        ),
        TaskSpec(
            name="tatoeba", title="Tatoeba", category="retrieval", request_kind="embed",
            languages=tuple(sorted(TATOEBA_CODES)),
            extra_languages=LASER_EXTRA,
            metrics=("acc", "acc_reverse"), score_metrics=("acc",),
            notes="extra languages use LASER's three-letter codes (xtreme-tatoeba-ast, ...)",
        ),
    )
}

#: The order of tasks in the XTREME paper and leaderboard.
TASK_ORDER: tuple[str, ...] = tuple(TASKS)


def get_task(name: str) -> TaskSpec:
    """Look a task up by name, with a helpful error for typos."""
    try:
        return TASKS[name]
    except KeyError:
        raise KeyError(
            f"unknown XTREME task {name!r}; known tasks: {', '.join(TASKS)}"
        ) from None


def check_language(task: str, lang: str) -> None:
    spec = get_task(task)
    if lang not in spec.all_languages:
        raise ValueError(
            f"language {lang!r} is not part of {spec.title}; its languages are: "
            f"{' '.join(spec.all_languages)} (add it to xtreme_tasks/table.py to extend the task)"
        )
