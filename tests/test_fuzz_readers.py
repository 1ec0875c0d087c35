"""Generated garbage thrown at every reader: data files of each task, ``xtreme-eval score``,
checkpoints.yaml, torch.save files, DCP metadata and cache chunks. The only acceptable
outcomes are a result or one of our own error types (never a traceback from deeper down).

Budget: a few hundred examples in all, well under a minute on CI (``deadline=None``:
the shared CI cores make single examples slow now and then).
"""

from __future__ import annotations

import io
import pickle
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness_ext.errors import is_user_error

FUZZ = settings(max_examples=25, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

#: characters that matter to our formats: separators, quotes, brackets, digits, non-ASCII, controls
_ALPHABET = st.sampled_from(list("ab \t\n\r{}[]\":,.-0123456789_eéк中\x00\ufeff") +
                            ["O", "B-PER", "I-LOC", "NOUN", "entailment", '"answer_start"', '"text"'])
GARBAGE = st.one_of(
    st.binary(max_size=400),
    st.lists(_ALPHABET, max_size=200).map(lambda xs: "".join(xs).encode("utf-8")),
)


def _mutate(seed: bytes) -> st.SearchStrategy[bytes]:
    """``seed`` with a slice replaced by garbage, or cut short: near-valid inputs."""
    return st.tuples(st.integers(0, len(seed)), st.integers(0, 40), GARBAGE, st.booleans()).map(
        lambda t: (seed[: t[0]] + t[2] + seed[t[0] + t[1]:]) if t[3] else seed[: t[0]])


def _ours(exc: BaseException) -> bool:
    from harness_ext.backends.base import CheckpointError
    from xtreme_tasks.data import DataError

    return is_user_error(exc) or isinstance(exc, (CheckpointError, DataError))


def _expect_result_or_ours(call):
    try:
        return call()
    except Exception as exc:  # noqa: BLE001 - the point: which exceptions escape
        if not _ours(exc):
            raise AssertionError(f"{type(exc).__module__}.{type(exc).__name__} escaped: {exc}") from exc
        assert "Traceback" not in str(exc)
        return None


# --------------------------------------------------------------------------- data readers
#: task -> (language, split, files to fill relative to the data root)
DATA_FILES = {
    "xnli": ("en", "test", ["xnli/test-en.tsv"]),
    "pawsx": ("en", "test", ["pawsx/test-en.tsv"]),
    "udpos": ("en", "test", ["udpos/test-en.tsv"]),
    "panx": ("en", "test", ["panx/test-en.tsv"]),
    "xquad": ("en", "test", ["xquad/xquad.en.json"]),
    "mlqa": ("en", "test", ["mlqa/MLQA_V1/test/test-context-en-question-en.json"]),
    "tydiqa": ("en", None, ["tydiqa/tydiqa-goldp-v1.1-dev/tydiqa.goldp.en.dev.json"]),
    "tatoeba": ("de", None, ["tatoeba/tatoeba.deu-eng.deu", "tatoeba/tatoeba.deu-eng.eng"]),
    "bucc2018": ("de", "dev", ["bucc2018/de-en.dev.de", "bucc2018/de-en.dev.en", "bucc2018/de-en.dev.gold"]),
}


@pytest.mark.parametrize("task", list(DATA_FILES))
def test_data_readers(task: str) -> None:
    from xtreme_tasks.data import load_docs

    lang, split, files = DATA_FILES[task]

    @FUZZ
    @given(contents=st.lists(GARBAGE, min_size=len(files), max_size=len(files)))
    def run(contents: list[bytes]) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            for rel, data in zip(files, contents):
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
                (root / rel).write_bytes(data)
            docs = _expect_result_or_ours(lambda: load_docs(task, lang, split, data_dir=root))
            assert docs is None or (isinstance(docs, list) and all(isinstance(d, dict) for d in docs))

    run()


# --------------------------------------------------------------------------- xtreme-eval score
def test_score_command(shared_data: Path, tmp_path: Path) -> None:
    from harness_ext.reports.official import score_command

    mock = shared_data / "xtreme_mock"
    labels = tmp_path / "labels"
    for task in ("xnli", "panx", "xquad"):
        shutil.copytree(mock / "labels" / task, labels / task)
    seeds = {task: (mock / "predictions" / task / name).read_bytes()
             for task, name in (("xnli", "test-en.tsv"), ("panx", "test-en.tsv"), ("xquad", "test-en.json"))}

    @FUZZ
    @given(task=st.sampled_from(sorted(seeds)), data=st.data())
    def run(task: str, data: st.DataObject) -> None:
        garbage = data.draw(st.one_of(GARBAGE, _mutate(seeds[task])))
        with tempfile.TemporaryDirectory() as tmp:
            preds = Path(tmp) / "predictions"
            shutil.copytree(mock / "predictions" / task, preds / task)
            name = "test-en.json" if task == "xquad" else "test-en.tsv"
            (preds / task / name).write_bytes(garbage)
            code = _expect_result_or_ours(lambda: score_command(preds, labels, [task], as_json=True))
            assert code in (None, 0, 2)

    run()


# --------------------------------------------------------------------------- checkpoint files
def test_checkpoints_yaml() -> None:
    from harness_ext.systems import load_systems

    seed = b"systems:\n  a: {family: x, size: 1, encoder: ./enc, retrieval: {layer: 3}}\n"

    @FUZZ
    @given(st.one_of(GARBAGE, _mutate(seed)))
    def run(data: bytes) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "checkpoints.yaml"
            path.write_bytes(data)
            _expect_result_or_ours(lambda: load_systems(path))

    run()


def test_torch_files() -> None:
    from harness_ext.backends._torchfile import torch_load

    buffer = io.BytesIO()
    torch.save({"w": torch.ones(2, 3), "cfg": {"lr": 0.1}}, buffer)

    @FUZZ
    @given(st.one_of(GARBAGE, _mutate(buffer.getvalue())))
    def run(data: bytes) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "model.pt"
            path.write_bytes(data)
            _expect_result_or_ours(lambda: torch_load(path))

    run()


def test_dcp_metadata() -> None:
    from harness_ext.backends.dcp import load_metadata

    with tempfile.TemporaryDirectory() as tmp:
        import torch.distributed.checkpoint as dcp

        dcp.save({"model": {"w": torch.ones(2)}}, checkpoint_id=tmp, no_dist=True)
        seed = (Path(tmp) / ".metadata").read_bytes()

    @FUZZ
    @given(st.one_of(GARBAGE, _mutate(seed), st.just(pickle.dumps({"a": 1}))))
    def run(data: bytes) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / ".metadata").write_bytes(data)
            _expect_result_or_ours(lambda: load_metadata(Path(tmp)))

    run()


def test_cache_chunks() -> None:
    from harness_ext.retrieval.cache import EmbeddingCache

    @FUZZ
    @given(vectors=GARBAGE, keys=GARBAGE)
    def run(vectors: bytes, keys: bytes) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            namespace = EmbeddingCache(tmp).namespace({"x": 1}, layer=0)
            namespace.put(["a", "b"], np.ones((2, 4), np.float32))
            chunk = next(Path(namespace.folder).glob("*.vectors.npy"))
            chunk.write_bytes(vectors)
            if keys:
                chunk.with_name(chunk.name.replace(".vectors", ".keys")).write_bytes(keys)
            fresh = EmbeddingCache(tmp).namespace({"x": 1}, layer=0)
            found, missing = fresh.get(["a", "b"])
            assert missing == [0, 1] or (found is not None and np.isfinite(found).all())

    run()
