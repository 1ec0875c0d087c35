"""Small Mewsli-X files in exactly the schema get-mewsli-x.sh writes (utils_mewslix.py dataclasses).

The real files cannot be downloaded here; these hold a few entities and one mention per
language, with sentence spans, a mention span and an earlier ``{...}`` to escape, so that
every field the loader reads is present with its real name and shape.
"""

from __future__ import annotations

import json
from pathlib import Path

LANGUAGES = "ar de en es fa ja pl ro ta tr uk".split()

ENTITIES = [
    ("Q90", "Paris", "Paris is the capital of France. It lies on the Seine."),
    ("Q64", "Berlin", "Berlin is the capital of Germany.\nIt lies on the Spree."),
    ("Q1754", "Stockholm", "Stockholm is the capital of Sweden."),
    ("Q220", "Rome", "Rome is the capital of Italy. It lies on the Tiber."),
    ("Q1085", "Prague", "Prague is the capital of the Czech Republic."),
]
#: language -> (mentioned city, gold QID)
MENTIONS = {lang: ENTITIES[i % len(ENTITIES)][:2][::-1] for i, lang in enumerate(LANGUAGES)}


def sentence_spans(text: str) -> list[dict]:
    spans, start = [], 0
    for i, ch in enumerate(text):
        if ch == "." and (i + 1 == len(text) or text[i + 1] in " \n"):
            spans.append({"start": start, "end": i + 1})
            start = i + 2
    return spans


def entity_record(qid: str, title: str, description: str) -> dict:
    return {
        "entity_id": qid, "title": title, "description": description,
        "sentence_spans": sentence_spans(description), "description_language": "en",
        "description_url": f"https://en.wikipedia.org/wiki/{title}",
    }


def mention_record(lang: str, city: str, qid: str, number: int) -> dict:
    text = f"News arrived. Officials of {{the ministry}} met in {city} on Monday.\nNothing else happened."
    start = text.index(city)
    return {
        "context": {
            "document_title": f"Story {number}", "document_url": f"https://{lang}.wikinews.org/wiki/{number}",
            "document_id": f"{lang}-{number}", "language": lang, "text": text, "sentence_spans": sentence_spans(text),
            "section_title": None,
        },
        "mentions": [{
            "example_id": f"{lang}-{number}-0", "mention_span": {"start": start, "end": start + len(city), "text": city},
            "entity_id": qid, "metadata": {"source": "test"},
        }],
    }


def write_raw(root: Path, split: str = "test") -> Path:
    """get-mewsli-x.sh's own layout: ``mewslix/candidate_set_entities.jsonl`` + ``wikinews_mentions-<split>.jsonl``."""
    base = root / "mewslix"
    base.mkdir(parents=True, exist_ok=True)
    (base / "candidate_set_entities.jsonl").write_text(
        "".join(json.dumps(entity_record(*e)) + "\n" for e in ENTITIES), encoding="utf-8")
    lines = [json.dumps(mention_record(lang, city, qid, n)) for n, (lang, (city, qid)) in enumerate(MENTIONS.items())]
    (base / f"wikinews_mentions-{split}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def write_sharded(root: Path, split: str = "test", blank_labels: bool = False) -> Path:
    """XTREME's layout after utils_preprocess.py: per-language mentions and labels files."""
    write_raw(root, split)
    base = root / "mewslix"
    (base / "wikinews_mentions").mkdir(exist_ok=True)
    (base / "wikinews_labels").mkdir(exist_ok=True)
    for n, (lang, (city, qid)) in enumerate(MENTIONS.items()):
        record = mention_record(lang, city, qid, n)
        gold = "" if blank_labels else qid
        for mention in record["mentions"]:
            mention["entity_id"] = gold
        (base / "wikinews_mentions" / f"{split}-{lang}.jsonl").write_text(json.dumps(record) + "\n", encoding="utf-8")
        (base / "wikinews_labels" / f"{split}-{lang}.json").write_text(
            json.dumps({m["example_id"]: [gold] for m in record["mentions"]}), encoding="utf-8")
    (base / f"wikinews_mentions-{split}.jsonl").unlink()
    return root
