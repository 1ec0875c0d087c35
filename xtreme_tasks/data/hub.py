"""Reading the hub copy, with errors that say how to use local files instead.

Every hub loader calls :func:`load_dataset` here instead of ``datasets.load_dataset``.
When the hub cannot be reached (offline, ``HF_HUB_OFFLINE=1`` with nothing cached) or
does not have the config or revision asked for, the user gets one
:class:`~xtreme_tasks.data.DataError` that names what failed and the local layout to put
under ``$XTREME_DATA_DIR`` instead, not a ``datasets`` traceback. Offline is found by one
short probe per process (:func:`hub_reachable`), not by ``huggingface_hub``'s five retries
with back-off for every file of every task (25 s per task, ~40 min for ``xtreme_*``).
"""

from __future__ import annotations

import logging
import os
from typing import Any

from xtreme_tasks.data import DATA_DIR_ENV, DataError
from xtreme_tasks.table import TATOEBA_ALL_CODES

#: what ``$XTREME_DATA_DIR`` must hold for each task (see docs/data.md)
LOCAL_LAYOUTS: dict[str, str] = {
    "xnli": "xnli/test-<lang>.tsv (sentence1<TAB>sentence2<TAB>label)",
    "pawsx": "pawsx/test-<lang>.tsv (sentence1<TAB>sentence2<TAB>label)",
    "udpos": (
        "udpos/ with the UD v2.5 treebanks (v2.7 for XTREME-R's lt pl uk wo ro): an unpacked "
        "ud-treebanks-v2.5/ (ud-treebanks-v2.7/), UD_*/ folders, <lang>_*-ud-test.conllu files, or XTREME's "
        "test-<lang>.tsv (word<TAB>UPOS)"
    ),
    "panx": "panx/test-<lang>.tsv (token<TAB>tag, a blank line between sentences)",
    "xquad": "xquad/xquad.<lang>.json (github.com/deepmind/xquad)",
    "mlqa": "mlqa/MLQA_V1/test/test-context-<lang>-question-<lang>.json (MLQA_V1.zip unpacked)",
    "tydiqa": "tydiqa/tydiqa-goldp-v1.1-dev/tydiqa.goldp.<lang>.dev.json (or tydiqa-goldp-dev-<language>.json)",
    "bucc2018": "bucc2018/<lang>-en.{dev,test}.{<lang>,en} and .gold (the BUCC 2018 archives)",
    "tatoeba": "tatoeba/tatoeba.<xxx>-eng.<xxx> and tatoeba.<xxx>-eng.eng (LASER data/tatoeba/v1)",
    "xcopa": "xcopa/<lang>/test.<lang>.jsonl (cambridgeltl/xcopa data/)",
}

#: exception class names (anywhere in the MRO) that mean "could not reach the hub"
_OFFLINE = {
    "ConnectionError", "OfflineModeIsEnabled", "LocalEntryNotFoundError", "ConnectError",
    "ConnectTimeout", "ReadTimeout", "Timeout", "TimeoutError", "TimeoutException",
}
_NOT_FOUND = {"DatasetNotFoundError", "RepositoryNotFoundError", "RevisionNotFoundError", "EntryNotFoundError"}


def use_local_instead(task: str, lang: str) -> str:
    """The fix: which folder layout to point ``$XTREME_DATA_DIR`` at."""
    layout = LOCAL_LAYOUTS.get(task, f"{task}/ in the official XTREME layout").replace("<lang>", lang)
    layout = layout.replace("<xxx>", TATOEBA_ALL_CODES.get(lang, lang))
    return f"set {DATA_DIR_ENV} to a folder holding {layout} (see docs/data.md)"


def why(err: BaseException) -> str | None:
    """A short reason when ``err`` means offline / no such config / no such revision, else None."""
    names = {cls.__name__ for cls in type(err).__mro__}
    text = str(err).splitlines()[0][:200] if str(err) else type(err).__name__
    if names & _OFFLINE:
        return f"the hub cannot be reached: {text}"
    if names & _NOT_FOUND:
        return f"not found on the hub: {text}"
    if isinstance(err, ValueError) and "BuilderConfig" in str(err) and "not found" in str(err):
        return "the hub dataset has no such config"
    return None


log = logging.getLogger(__name__)
#: what the probe found in this process: None (not probed yet), True (the hub does not answer), False
_OFFLINE_FOUND: bool | None = None


def hub_reachable(timeout: float = 3.0) -> bool:
    """One request to the hub's endpoint, no retries: does anything answer within ``timeout``
    seconds? Any HTTP answer counts; proxies from the environment are used as the hub client would."""
    import urllib.error
    import urllib.request

    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
    try:
        urllib.request.urlopen(urllib.request.Request(endpoint + "/api/models?limit=1", method="HEAD"), timeout=timeout)
    except urllib.error.HTTPError:
        return True
    except (OSError, ValueError):
        return False
    return True


def offline_by_env() -> bool:
    return any(os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on")
               for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"))


def found_offline() -> bool:
    """Whether this process's probe found the hub silent (without probing)."""
    return bool(_OFFLINE_FOUND)


def offline_unless_hub_answers() -> bool:
    """Whether to work offline: asked for, or found by one probe per process. When the hub does
    not answer, ``datasets``, ``huggingface_hub`` and so transformers read their local cache only
    (as under ``HF_HUB_OFFLINE=1``) instead of retrying every file."""
    global _OFFLINE_FOUND
    if offline_by_env():
        return True
    if _OFFLINE_FOUND is None:
        _OFFLINE_FOUND = not hub_reachable()
        if _OFFLINE_FOUND:
            import datasets
            import huggingface_hub.constants

            log.warning("xtreme: the hub does not answer; reading hub files from the local cache only")
            datasets.config.HF_HUB_OFFLINE = True
            huggingface_hub.constants.HF_HUB_OFFLINE = True
    return _OFFLINE_FOUND


def load_dataset(task: str, lang: str, name: str, config: str, split: str, revision: str) -> Any:
    """``datasets.load_dataset(name, config, split=, revision=)`` with errors that name the local fix."""
    import datasets

    offline_unless_hub_answers()
    try:
        return datasets.load_dataset(name, config, split=split, revision=revision)
    except Exception as err:
        reason = why(err)
        if reason is None:
            raise
        raise DataError(
            f"{task} {lang}: cannot load {name}@{revision} config {config!r} split {split!r} ({reason}); "
            f"{use_local_instead(task, lang)}"
        ) from err
