"""Mewsli-X (XTREME-R): WikiNews mentions in 11 languages linked to ~1M English Wikidata entities.

The data is what ``get-mewsli-x.sh`` (google-research ``dense_representations_for_entity_retrieval/
mel``) writes, in one of two layouts under ``$XTREME_DATA_DIR/mewslix/``:

* XTREME's (``download_data.sh`` then ``utils_preprocess.py --task mewslix``):
  ``candidate_set_entities.jsonl``, ``wikinews_mentions/<split>-<lang>.jsonl`` and
  ``wikinews_labels/<split>-<lang>.json`` (``{example_id: [QID]}``; the test labels are
  blanked to ``""`` by that script, so test scores need the withheld gold);
* get-mewsli-x.sh's own: ``candidate_set_entities.jsonl`` and ``wikinews_mentions-<split>.jsonl``
  (every language in one file, gold QIDs inside the mentions).

Schemas (``utils_mewslix.py``): an entity line is ``{"entity_id", "title", "description",
"sentence_spans": [{"start", "end"}], "description_language", "description_url"}``; a
mentions line is ``{"context": {"document_title", "document_url", "document_id", "language",
"text", "sentence_spans", "section_title"?}, "mentions": [{"example_id", "mention_span":
{"start", "end", "text"}, "entity_id", "metadata"?}]}``.

Model inputs are built as the official baseline does (re-implemented, not copied):

* a mention: its context cut to the one sentence that holds it, earlier ``{...}`` in that
  sentence escaped to ``(...)``, the mention wrapped in `` { `` and `` } ``, the mention text
  prepended (``"Smith: The verdict came back for { Smith }, who ..."``), lines joined with
  spaces and double spaces collapsed once;
* an entity: its description's sentences joined with spaces, normalised the same way.

Documents of one language's leaf: ``{"id": "m:<example_id>", "role": "mention", "lang",
"example_id", "text", "gold": QID or None}`` for that language's mentions, then ``{"id": "e:<QID>",
"role": "entity", "entity_id", "text"}`` for every candidate, in file order (the index the
search returns). The candidate set is read once per process and the list shared by the leaves.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Iterator

from xtreme_tasks.data import DataError, require_file
from xtreme_tasks.data.textio import read_json, read_json_lines, read_lines

#: Mewsli-X's mention languages (utils_mewslix.MENTION_LANGUAGES)
LANGUAGES: tuple[str, ...] = tuple("ar de en es fa ja pl ro ta tr uk".split())
#: predictions kept per mention (utils_mewslix.TOP_K)
TOP_K = 20
#: the official evaluation's token limit for mentions and entities (scripts/run_eval_mewslix.sh)
MAX_TOKENS = 64
MARK_LEFT, MARK_RIGHT = "{", "}"
_MARKED = re.compile(re.escape(MARK_LEFT) + r"(.*?)" + re.escape(MARK_RIGHT))
SCHEMA = "utils_mewslix.py (google-research/xtreme third_party/)"


def normalize(text: str) -> str:
    """Lines joined by spaces, double spaces collapsed once, stripped (the official normalisation)."""
    return " ".join(text.splitlines()).replace("  ", " ").strip()


def _spans(raw: Any, text: str, where: str) -> list[tuple[int, int]]:
    try:
        spans = [(int(s["start"]), int(s["end"])) for s in raw]
    except (TypeError, KeyError, ValueError):
        raise DataError(f"{where}: 'sentence_spans' must be a list of {{\"start\", \"end\"}} objects ({SCHEMA})") from None
    for start, end in spans:
        if not 0 <= start < end or start >= len(text) or end > len(text):
            raise DataError(f"{where}: sentence span [{start}, {end}] is outside its text ({len(text)} characters)")
    return spans


def entity_text(entity: dict, where: str) -> str:
    """An entity's model input: its description's sentences, joined and normalised."""
    description = entity["description"]
    spans = _spans(entity.get("sentence_spans"), description, where)
    return normalize(" ".join(description[start:end] for start, end in spans))


def mention_text(context: dict, mention: dict, where: str) -> str:
    """A mention's model input: mention text, then its sentence with the mention marked."""
    text = context["text"]
    span = mention["mention_span"]
    start, end, surface = int(span["start"]), int(span["end"]), span["text"]
    if not 0 <= start < end <= len(text) or text[start:end] != surface:
        raise DataError(f"{where}: mention_span [{start}, {end}] {surface!r} does not match its context text "
                        f"({text[start:end]!r}); the file is damaged, download it again")
    sentence = next(((b, e) for b, e in _spans(context.get("sentence_spans"), text, where)
                     if b <= start < e and end <= e), None)
    if sentence is None:
        raise DataError(f"{where}: mention {surface!r} crosses sentence boundaries or lies outside every sentence "
                        "span; the official preprocessing cannot build its input")
    left = _MARKED.sub(r"(\1)", text[sentence[0]:start])
    right = _MARKED.sub(r"(\1)", text[end:sentence[1]])
    return normalize(f"{surface}: {left} {MARK_LEFT} {surface} {MARK_RIGHT} {right}")


def _jsonl(path: Path, what: str) -> Iterator[tuple[int, dict]]:
    return read_json_lines(path, what, SCHEMA)


def _records(lines: Any, path: Path, shown: Any) -> Iterator[tuple[int, dict]]:
    for number, record in read_json_lines(path, "Mewsli-X candidate set", SCHEMA, lines=lines):
        shown.update(1)
        yield number, record


def _need(record: dict, keys: tuple[str, ...], where: str) -> None:
    missing = [k for k in keys if k not in record]
    if missing:
        raise DataError(f"{where}: missing field(s) {', '.join(missing)} ({SCHEMA})")


def read_entities(path: Path) -> list[dict]:
    """Candidate entity documents, in file order; a repeated QID is an error."""
    from harness_ext.progress import bar  # ~1M lines: a bar while they are parsed

    docs: list[dict] = []
    seen: set[str] = set()
    lines = read_lines(path, "Mewsli-X candidate set")
    with bar(len(lines.lines), "read Mewsli-X candidates", unit="entity", min_total=10_000) as shown:
        records = list(_records(lines, path, shown))
    for number, record in records:
        where = f"{path}:{number}"
        _need(record, ("entity_id", "description", "sentence_spans"), where)
        qid = str(record["entity_id"])
        if qid in seen:
            raise DataError(f"{where}: entity {qid} appears twice; each candidate entity once")
        seen.add(qid)
        docs.append({"id": f"e:{qid}", "role": "entity", "entity_id": qid, "text": entity_text(record, where)})
    if not docs:
        raise DataError(f"{path}: no candidate entities")
    return docs


def read_mentions(path: Path, langs: tuple[str, ...], labels: dict[str, dict[str, list]] | None = None) -> list[dict]:
    """Mention documents of ``langs`` from one mentions file; gold from ``labels`` (per language) when
    given, else from the mention's own ``entity_id`` (``""``: withheld, gold None)."""
    docs: list[dict] = []
    for number, record in _jsonl(path, "Mewsli-X mentions file"):
        where = f"{path}:{number}"
        _need(record, ("context", "mentions"), where)
        context = record["context"]
        _need(context, ("language", "text", "sentence_spans"), f"{where} context")
        lang = context["language"]
        if lang not in langs:
            continue
        for m, mention in enumerate(record["mentions"]):
            _need(mention, ("example_id", "mention_span", "entity_id"), f"{where} mention {m}")
            example_id = str(mention["example_id"])
            gold = mention["entity_id"]
            if labels is not None:
                gold = (labels.get(lang, {}).get(example_id) or [""])[0]
            docs.append({
                "id": f"m:{example_id}", "role": "mention", "lang": lang, "example_id": example_id,
                "text": mention_text(context, mention, f"{where} mention {example_id}"),
                "gold": str(gold).strip() or None,
            })
    return docs


def _split_name(split: str) -> str:
    if split == "test":
        return "test"
    if split in ("dev", "validation"):
        return "dev"
    raise DataError(f"Mewsli-X has the splits test and dev (validation), not {split!r}")


_ENTITIES: dict[tuple, list[dict]] = {}


def candidate_docs(path: Path) -> list[dict]:
    """The candidate set, read once per process per file (1M entities take a while to parse)."""
    key = (str(path), path.stat().st_size, path.stat().st_mtime_ns)
    if key not in _ENTITIES:
        _ENTITIES.clear()
        _ENTITIES[key] = read_entities(path)
    return _ENTITIES[key]


def local(root: Path, task: str, lang: str, split: str) -> list[dict]:
    """``lang``'s mentions of ``split``, then the whole candidate set."""
    if lang not in LANGUAGES:
        raise DataError(f"Mewsli-X has no mention language {lang!r}; its languages are {' '.join(LANGUAGES)}")
    mentions = [d for d in all_mentions(root, split) if d["lang"] == lang]
    entities = require_file(Path(root) / "mewslix" / "candidate_set_entities.jsonl",
                            "Mewsli-X candidate set (get-mewsli-x.sh output)")
    return mentions + candidate_docs(entities)


def all_mentions(root: Path, split: str) -> list[dict]:
    """The mentions of every mention language (either layout); each language must have some."""
    base = Path(root) / "mewslix"
    name = _split_name(split)
    sharded = base / "wikinews_mentions"
    mentions: list[dict] = []
    if sharded.is_dir():  # XTREME's preprocessed layout
        for code in LANGUAGES:
            path = require_file(sharded / f"{name}-{code}.jsonl", f"Mewsli-X {code} {name} mentions")
            label_file = base / "wikinews_labels" / f"{name}-{code}.json"
            labels = {code: read_json(label_file, f"Mewsli-X {code} {name} labels")} if label_file.is_file() else None
            mentions += read_mentions(path, (code,), labels)
    else:
        mentions = read_mentions(require_file(base / f"wikinews_mentions-{name}.jsonl",
                                              f"Mewsli-X {name} mentions (get-mewsli-x.sh output)"), LANGUAGES)
    missing = sorted(set(LANGUAGES) - {doc["lang"] for doc in mentions})
    if missing:
        raise DataError(f"Mewsli-X {name} mentions under {base} have none for {' '.join(missing)}; the task averages "
                        f"all {len(LANGUAGES)} mention languages, so the files must hold them all")
    return mentions


def hub(task: str, lang: str, split: str, revision: str) -> list[dict]:
    raise DataError(
        "Mewsli-X is not on the hub: run get-mewsli-x.sh (google-research/google-research, "
        "dense_representations_for_entity_retrieval/mel) and set XTREME_DATA_DIR to a folder holding "
        "mewslix/candidate_set_entities.jsonl and mewslix/wikinews_mentions-<split>.jsonl (see docs/data.md)"
    )
