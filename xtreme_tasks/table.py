"""The one table of tasks x languages, and the two benchmark versions built from it.

Everything per-language (the generated lm-eval YAML, the hub config names, the
report's column order) is derived from this file. To add a language, add it to
the task's ``languages`` (or ``extra_languages`` when it is not part of the
official XTREME score) and run ``python -m xtreme_tasks.generate``.
To add a task, add a ``TaskSpec`` here, a loader in ``xtreme_tasks/data/`` and,
if it needs a new request kind, a task class in ``harness_ext/tasks/``.

Two benchmarks share the table (``BENCHMARKS``), as in the official ``evaluate.py
--xtreme_version``: ``xtreme`` (nine tasks; ``TASKS`` and ``TASK_ORDER`` are exactly
these, so code written for XTREME keeps meaning XTREME) and ``xtreme-r`` (XTREME-R,
Ruder et al. 2021: drops PAWS-X and BUCC, adds XCOPA, LAReQA and Mewsli-X, and scores
more languages of UD-POS, PAN-X, Tatoeba and XQuAD). A leaf task (``xtreme-<task>-<lang>``)
is one data set and belongs to every benchmark that scores it: XTREME-R's ``xtreme-r_xnli``
holds the same leaves as XTREME's ``xtreme_xnli``. ``TABLE`` holds every task of either.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

Category = Literal["classification", "structured_prediction", "qa", "retrieval"]
#: ``choose``: pick one of a document's own candidates (XCOPA's two alternatives)
RequestKind = Literal["classify", "tag", "extract_span", "embed", "choose"]
#: the benchmark versions, named as the official evaluate.py's ``--xtreme_version``
BenchmarkName = Literal["xtreme", "xtreme-r"]

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
    #: the benchmark that introduced the task (its ``group`` is that benchmark's group)
    origin: BenchmarkName = "xtreme"

    @property
    def group(self) -> str:
        """The group of the benchmark that introduced the task: ``xtreme_xnli``, ``xtreme-r_xcopa``
        (XTREME-R's group of an XTREME task is ``BENCHMARKS["xtreme-r"].task_group(name)``)."""
        return GROUP_FORMAT[self.origin].format(task=self.name)

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
#: XTREME-R's five added Tatoeba languages (two-letter codes, as its evaluate.py names them)
TATOEBA_R_CODES = {"az": "aze", "lt": "lit", "pl": "pol", "uk": "ukr", "ro": "ron"}
#: every two-letter Tatoeba code of either benchmark -> LASER code
TATOEBA_ALL_CODES = {**TATOEBA_CODES, **TATOEBA_R_CODES}
#: LASER languages outside both benchmarks' 41: the rest of ``xtreme-tatoeba-all`` (112 in all)
LASER_EXTRA: tuple[str, ...] = tuple(c for c in LASER_LANGUAGES if c not in set(TATOEBA_ALL_CODES.values()))

#: XTREME-R's added languages per task (scripts/download_data.sh, evaluate.py XTREME_R_TASK2LANGS)
XTREME_R_ADDED: dict[str, tuple[str, ...]] = {
    "udpos": ("lt", "pl", "uk", "wo", "ro"),
    "panx": ("qu", "pl", "uk", "az", "lt", "pa", "gu", "ro"),
    "tatoeba": tuple(TATOEBA_R_CODES),
    "xquad": ("ro",),
}
#: UD release per UD-POS language. The official download_data.sh keeps XTREME's languages on
#: UD v2.5 in both benchmarks ("to ensure backwards compatibility") and reads only XTREME-R's
#: added languages from UD v2.7; so one leaf per language serves both benchmarks.
UDPOS_RELEASE: dict[str, str] = {lang: "2.7" for lang in XTREME_R_ADDED["udpos"]}
UDPOS_DEFAULT_RELEASE = "2.5"

XCOPA_LABELS = ("choice1", "choice2")

TABLE: dict[str, TaskSpec] = {
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
            extra_languages=XTREME_R_ADDED["udpos"],
            metrics=("f1", "token_acc"), score_metrics=("f1",), labels=UPOS_TAGS,
            notes="seqeval 0.0.12 span F1 (the official number); token accuracy as a second metric; "
                  "lt pl uk wo ro (XTREME-R's) are read from UD v2.7, the rest from UD v2.5",
        ),
        TaskSpec(
            name="panx", title="PAN-X", category="structured_prediction", request_kind="tag",
            languages=tuple(
                "ar he vi id jv ms tl eu ml ta te af nl en de el bn hi mr ur fa fr it pt es "
                "bg ru ja ka ko th sw yo my zh kk tr et fi hu".split()
            ),
            extra_languages=XTREME_R_ADDED["panx"],
            metrics=("f1", "precision", "recall"), score_metrics=("f1",), labels=PANX_TAGS,
        ),
        TaskSpec(
            name="xquad", title="XQuAD", category="qa", request_kind="extract_span",
            languages=tuple("en es de el ru tr ar vi th zh hi".split()),
            extra_languages=XTREME_R_ADDED["xquad"],
            metrics=("f1", "em"), score_metrics=("em", "f1"),
            notes="ro is XTREME-R's addition: in the XTREME-R score, outside the XTREME score",
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
            extra_languages=XTREME_R_ADDED["tatoeba"] + LASER_EXTRA,
            metrics=("acc", "acc_reverse"), score_metrics=("acc",),
            notes="XTREME-R's az lt pl uk ro use two-letter codes; the other extra languages use LASER's "
                  "three-letter codes (xtreme-tatoeba-ast, ...)",
        ),
        # ---- introduced by XTREME-R
        TaskSpec(
            name="xcopa", title="XCOPA", category="classification", request_kind="choose",
            languages=tuple("et ht id it qu sw ta th tr vi zh".split()),
            metrics=("acc",), score_metrics=("acc",), labels=XCOPA_LABELS, origin="xtreme-r",
            notes="choice of plausible alternative: label 0 = choice1, 1 = choice2 (cambridgeltl/xcopa)",
        ),
        TaskSpec(
            name="lareqa", title="LAReQA (XQuAD-R)", category="retrieval", request_kind="embed",
            languages=tuple("ar de el en es hi ru th tr vi zh".split()),
            metrics=("map@20",), score_metrics=("map@20",), origin="xtreme-r",
            notes="questions in each language retrieve answer sentences from one pool of all 11 languages; "
                  "evaluate.py lists no languages for it (it cannot score a predictions folder)",
        ),
        TaskSpec(
            name="mewslix", title="Mewsli-X", category="retrieval", request_kind="embed",
            languages=tuple("ar de en es fa ja pl ro ta tr uk".split()),
            metrics=("map@20",), score_metrics=("map@20",), origin="xtreme-r",
            notes="entity linking as retrieval of English Wikidata descriptions",
        ),
    )
}

#: XTREME's nine tasks (``BENCHMARKS["xtreme"]``); XTREME-R's own are in ``TABLE``
TASKS: dict[str, TaskSpec] = {name: spec for name, spec in TABLE.items() if spec.origin == "xtreme"}

#: The order of tasks in the XTREME paper and leaderboard.
TASK_ORDER: tuple[str, ...] = tuple(TASKS)

#: benchmark -> the name format of its per-task groups; ``xtreme_*`` must select XTREME's nine only,
#: so XTREME-R's use a hyphen (``xtreme-r_xnli``; ``xtreme_r_xnli`` would match ``xtreme_*``)
GROUP_FORMAT: dict[str, str] = {"xtreme": "xtreme_{task}", "xtreme-r": "xtreme-r_{task}"}


@dataclass(frozen=True)
class Benchmark:
    """One benchmark version: its tasks with the languages it scores, and its categories.

    Mirrors the official evaluate.py's ``XTREME_VERSIONS_LANG_DICT`` (task -> languages) and
    ``XTREME_VERSIONS_GROUP_DICT`` (category -> tasks); the overall score is the mean of every
    task's score and is shown only when all tasks have one, a category's only when all its tasks do.
    """

    name: str
    title: str
    #: task -> the languages in this benchmark's score, in report order
    languages: dict[str, tuple[str, ...]]
    #: category -> its tasks (a task may sit in two, as XCOPA does in XTREME-R)
    categories: dict[str, tuple[str, ...]]

    @property
    def umbrella(self) -> str:
        """The lm-eval group running all of it: ``xtreme`` / ``xtreme-r``."""
        return self.name

    @property
    def tasks(self) -> tuple[str, ...]:
        return tuple(self.languages)

    def task_group(self, task: str) -> str:
        return GROUP_FORMAT[self.name].format(task=task)

    def spec(self, task: str) -> TaskSpec:
        """The task as this benchmark scores it: ``languages`` are its scored ones, every other
        language of the table is an extra."""
        base = TABLE[task]
        scored = self.languages[task]
        extra = tuple(lang for lang in base.all_languages if lang not in scored)
        return replace(base, languages=scored, extra_languages=extra)

    def specs(self) -> dict[str, TaskSpec]:
        return {task: self.spec(task) for task in self.tasks}


def _xtreme_categories() -> dict[str, tuple[str, ...]]:
    out: dict[str, list[str]] = {}
    for name in TASK_ORDER:
        out.setdefault(TASKS[name].category, []).append(name)
    return {category: tuple(names) for category, names in out.items()}


def _with_added(task: str) -> tuple[str, ...]:
    return TABLE[task].languages + XTREME_R_ADDED.get(task, ())


BENCHMARKS: dict[str, Benchmark] = {
    "xtreme": Benchmark(
        name="xtreme", title="XTREME",
        languages={name: TASKS[name].languages for name in TASK_ORDER},
        categories=_xtreme_categories(),
    ),
    "xtreme-r": Benchmark(
        name="xtreme-r", title="XTREME-R",
        # the XTREME-R paper's order; evaluate.py's XTREME_R_TASK2LANGS holds the same ten tasks
        languages={name: _with_added(name) for name in (
            "xnli", "xcopa", "udpos", "panx", "xquad", "mlqa", "tydiqa", "tatoeba", "mewslix", "lareqa")},
        # evaluate.py XTREME_R_GROUP2TASK ('tagging' is our 'structured_prediction'): LAReQA is in no
        # category there (it counts in the overall score only) and XCOPA is in two
        categories={
            "classification": ("xnli", "xcopa"),
            "structured_prediction": ("udpos", "panx"),
            "qa": ("xquad", "mlqa", "tydiqa"),
            "retrieval": ("tatoeba", "mewslix"),
            "multi_choice": ("xcopa",),
        },
    ),
}
DEFAULT_BENCHMARK = "xtreme"


def get_benchmark(name: str) -> Benchmark:
    """Look a benchmark version up by name (``xtreme`` or ``xtreme-r``)."""
    try:
        return BENCHMARKS[name]
    except KeyError:
        raise KeyError(f"unknown benchmark {name!r}; known: {', '.join(BENCHMARKS)}") from None


def get_task(name: str) -> TaskSpec:
    """Look a task of either benchmark up by name, with a helpful error for typos."""
    try:
        return TABLE[name]
    except KeyError:
        raise KeyError(
            f"unknown XTREME task {name!r}; known tasks: {', '.join(TABLE)}"
        ) from None


def check_language(task: str, lang: str) -> None:
    spec = get_task(task)
    if lang not in spec.all_languages:
        raise ValueError(
            f"language {lang!r} is not part of {spec.title}; its languages are: "
            f"{' '.join(spec.all_languages)} (add it to xtreme_tasks/table.py to extend the task)"
        )
