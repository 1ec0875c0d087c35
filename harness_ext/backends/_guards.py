"""Limits on what a checkpoint's own files can make us do (see docs/reliability.md,
"Trust boundaries"). A checkpoint is data written by someone else: it may not run code
(``trust_remote_code``, ``auto_map``, hub attention kernels), name locations outside its
folder, or claim sizes that make us allocate or compute without bound.

Every check here raises :class:`CheckpointError` with one line naming the file, the field
and what to do instead; none of them reads more than the small metadata it checks.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any, Iterable

from harness_ext.backends.base import CheckpointError

#: deepest JSON nesting we parse; real configs and safetensors headers use < 10 levels
MAX_JSON_DEPTH = 64
#: an array may decode to this many times its bytes on disk (compressed zarr chunks of
#: constant values shrink a lot), and always to this many bytes
MAX_EXPANSION = 1024
SMALL_ARRAY_BYTES = 64 * 2**20
#: attention implementations that run code shipped with transformers/torch; anything
#: else (``org/repo`` names a hub kernel, downloaded and run by the ``kernels`` package)
LOCAL_ATTENTION = frozenset({"eager", "sdpa", "flash_attention_2", "flash_attention_3", "flex_attention",
                             "paged|eager", "paged|sdpa", "paged|flash_attention_2", "paged|flash_attention_3",
                             "paged|flex_attention"})
_ATTENTION_KEYS = ("attn_implementation", "_attn_implementation", "_attn_implementation_internal",
                   "experts_implementation", "_experts_implementation")
#: how long a checkpoint's regular expression may take over all module names (seconds)
REGEX_BUDGET_S = 1.0
MAX_REGEX_CHARS = 2000

REMOTE_CODE_FIX = ("XTREME's models are standard architectures and checkpoints never run code of their own; "
                   "convert the checkpoint to a standard transformers architecture (save_pretrained of a "
                   "built-in class) and evaluate that")


# --------------------------------------------------------------------------- custom code
def refuse_remote_code(value: Any, where: str) -> None:
    """``trust_remote_code`` set to anything true: one line, before anything is read."""
    if value is None or value is False or str(value).strip().lower() in {"", "0", "false", "no", "off", "none"}:
        return
    raise CheckpointError(f"{where}: trust_remote_code={value} is refused (it would import Python files from the "
                          f"checkpoint); {REMOTE_CODE_FIX}")


def check_config(config: Any, where: str) -> None:
    """A loaded transformers config that would run or fetch code: a hub kernel as its
    attention implementation (its own or a sub-config's)."""
    seen: set[int] = set()

    def walk(cfg: Any, path: str) -> None:
        if id(cfg) in seen:
            return
        seen.add(id(cfg))
        for key in _ATTENTION_KEYS:
            value = cfg.__dict__.get(key) if hasattr(cfg, "__dict__") else None
            for item in (value.values() if isinstance(value, dict) else [value]):
                if item is not None and str(item) not in LOCAL_ATTENTION:
                    raise CheckpointError(
                        f"{where}: {path}{key.lstrip('_').removesuffix('_internal')}={str(item)[:80]!r} names an "
                        f"attention kernel that would be downloaded and run; expected one of "
                        f"{', '.join(sorted(a for a in LOCAL_ATTENTION if '|' not in a))} (edit config.json)")
        for name, sub in list(getattr(cfg, "__dict__", {}).items()):
            if hasattr(sub, "to_dict") and hasattr(sub, "model_type"):
                walk(sub, f"{path}{name}.")

    walk(config, "")


def check_config_dict(data: Any, file: Path) -> None:
    """config.json as data, before transformers reads it: custom code (``auto_map``) and hub kernels."""
    if not isinstance(data, dict):
        raise CheckpointError(f"{file}: expected a JSON object (a transformers config), got {type(data).__name__}")
    if data.get("auto_map"):
        raise CheckpointError(f"{file}: auto_map names custom code ({', '.join(map(str, data['auto_map']))[:120]}) "
                              f"that transformers would import from the checkpoint; {REMOTE_CODE_FIX}")
    for key in _ATTENTION_KEYS:
        value = data.get(key)
        for item in (value.values() if isinstance(value, dict) else [value]):
            if item is not None and str(item) not in LOCAL_ATTENTION:
                raise CheckpointError(f"{file}: {key}={str(item)[:80]!r} names an attention kernel that would be "
                                      "downloaded and run; remove it or use sdpa/eager")
    for value in data.values():
        if isinstance(value, dict) and "model_type" in value:
            check_config_dict(value, file)


def check_local_config(folder: Path) -> None:
    """config.json (and tokenizer_config.json) of a local folder, read as bounded JSON first."""
    config = folder / "config.json"
    if config.is_file():
        check_config_dict(read_json(config, "a transformers config.json"), config)
    check_tokenizer_files(folder)


# --------------------------------------------------------------------------- JSON
def json_depth(text: str | bytes) -> int:
    """Deepest ``[``/``{`` nesting of a JSON text (strings skipped), in one linear pass."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def loads_json(text: str | bytes, where: str, what: str) -> Any:
    """``json.loads`` that refuses nesting deeper than :data:`MAX_JSON_DEPTH` in one line
    (Python's parser would raise RecursionError, transformers' readers a traceback)."""
    depth = json_depth(text)
    if depth > MAX_JSON_DEPTH:
        raise CheckpointError(f"{where}: JSON nested {depth} levels deep (expected {what}, at most "
                              f"{MAX_JSON_DEPTH} levels); the file is damaged or hostile, replace it")
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise CheckpointError(f"{where}: not valid JSON (expected {what}): {exc}") from None


def read_json(path: Path, what: str) -> Any:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot be read ({exc.strerror or exc}); expected {what}") from None
    return loads_json(raw, str(path), what)


# --------------------------------------------------------------------------- locations
def inside(path: str | Path, root: Path) -> bool:
    """``path`` (relative to ``root`` unless absolute) resolves inside ``root``, links followed."""
    target = (root / path).resolve()
    base = root.resolve()
    return target == base or base in target.parents


def named_location(value: Any, root: Path) -> str | None:
    """A location a checkpoint's metadata names (a recorded model name, a base model): a
    hub id is kept (fetched like one the user typed, with trust_remote_code=False), a local
    path only when it resolves inside ``root``; anything else is ``None`` (not followed)."""
    if not isinstance(value, str) or not value.strip() or "\0" in value:
        return None
    from harness_ext.backends import _looks_like_path

    if _looks_like_path(value) or Path(value).expanduser().is_absolute():
        target = Path(value).expanduser()
        return str((root / target).resolve()) if inside(target, root) else None
    if (root / value).exists():
        return str((root / value).resolve()) if inside(value, root) else None
    return value


#: tokenizer_config.json keys whose values transformers opens as files
_FILE_KEYS = ("vocab_file", "merges_file", "tokenizer_file", "spm_file", "sp_model_file", "vocab", "merges",
              "chat_template_file", "monolingual_vocab_file", "entity_vocab_file")


def check_tokenizer_files(folder: Path) -> None:
    """tokenizer_config.json may not name custom code or files outside its folder."""
    file = folder / "tokenizer_config.json"
    if not file.is_file():
        return
    data = read_json(file, "a tokenizer_config.json")
    if not isinstance(data, dict):
        raise CheckpointError(f"{file}: expected a JSON object, got {type(data).__name__}")
    if data.get("auto_map"):
        raise CheckpointError(f"{file}: auto_map names custom tokenizer code; {REMOTE_CODE_FIX}")
    for key in _FILE_KEYS:
        value = data.get(key)
        if isinstance(value, str) and ("/" in value or "\\" in value or value.startswith("~")) \
                and not inside(Path(value).expanduser(), folder):
            raise CheckpointError(f"{file}: {key}={value[:80]!r} points outside the checkpoint folder; "
                                  "expected a file name inside it (edit tokenizer_config.json)")


# --------------------------------------------------------------------------- sizes
def bytes_on_disk(path: Path, limit: int = 100_000) -> int:
    """Bytes of a file, or of the files under a folder (at most ``limit`` files looked at)."""
    if path.is_file():
        return path.stat().st_size
    total = 0
    for i, (dirpath, _dirs, files) in enumerate(os.walk(path, followlinks=False)):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                pass
        if i > limit:
            break
    return total


def memory_budget() -> int:
    """Bytes we may allocate for one checkpoint's arrays: ``$XTREME_MAX_CHECKPOINT_BYTES``,
    else the memory this machine has available now."""
    configured = os.environ.get("XTREME_MAX_CHECKPOINT_BYTES", "").strip()
    if configured.isdigit():
        return int(configured)
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except Exception:  # noqa: BLE001 - psutil missing or unsupported platform
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))


def check_claimed_bytes(claimed: int, on_disk: int, where: str, what: str, expansion: int = MAX_EXPANSION) -> None:
    """Refuse, before allocating, arrays whose metadata claims more bytes than the file
    could hold (``expansion`` x its bytes on disk) or than memory allows."""
    if claimed > max(SMALL_ARRAY_BYTES, expansion * on_disk):
        raise CheckpointError(f"{where}: {what} claims {_human(claimed)} but its files hold {_human(on_disk)} "
                              f"(more than {expansion}x); the metadata is damaged or hostile, nothing was allocated")
    budget = memory_budget()
    if claimed > budget:
        raise CheckpointError(f"{where}: {what} needs {_human(claimed)}, more than the {_human(budget)} of memory "
                              "available; free memory or set XTREME_MAX_CHECKPOINT_BYTES")


def _human(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def check_stored_zip(path: Path, what: str) -> None:
    """torch.save never compresses its zip entries; a compressed one could inflate a small
    file into gigabytes, so it is refused before anything is read."""
    try:
        with zipfile.ZipFile(path) as z:
            infos = z.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise CheckpointError(f"{path}: truncated or corrupted file (expected {what}): {type(exc).__name__}: {exc}") from None
    for info in infos:
        if info.compress_type != zipfile.ZIP_STORED:
            raise CheckpointError(f"{path}: entry {info.filename[:80]!r} is compressed (method {info.compress_type}); "
                                  f"torch.save writes stored entries only, so this is not {what}: re-save it with torch.save")
    total = sum(i.file_size for i in infos)
    if total > path.stat().st_size:
        raise CheckpointError(f"{path}: entries claim {total} bytes, more than the file's {path.stat().st_size} "
                              f"(expected {what}); the file is damaged or hostile")


# --------------------------------------------------------------------------- regular expressions
def regex_select(pattern: str, names: Iterable[str], where: str, field: str) -> list[str]:
    """The ``names`` that ``pattern`` matches in full, as peft would match them, evaluated
    with a time budget (a checkpoint's regex may backtrack without bound)."""
    import time

    import regex

    if len(pattern) > MAX_REGEX_CHARS:
        raise CheckpointError(f"{where}: {field} is a {len(pattern)}-character regular expression (at most "
                              f"{MAX_REGEX_CHARS}); list the module names instead")
    try:
        compiled = regex.compile(pattern)
    except (regex.error, RecursionError, OverflowError, ValueError) as exc:
        raise CheckpointError(f"{where}: {field} {pattern[:80]!r} is not a valid regular expression: {exc}") from None
    deadline = time.monotonic() + REGEX_BUDGET_S
    out = []
    try:
        for name in names:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            if compiled.fullmatch(name, timeout=left):
                out.append(name)
    except TimeoutError:
        raise CheckpointError(f"{where}: {field} {pattern[:80]!r} took over {REGEX_BUDGET_S:g} s to match the "
                              "model's module names (a backtracking pattern); list the module names instead") from None
    return out


def plain_names(value: Any, where: str, field: str) -> None:
    """A field peft turns into a regular expression, which must be plain dotted names."""
    import re

    items = [value] if isinstance(value, str) else list(value or [])
    for item in items:
        if not isinstance(item, str) or not re.fullmatch(r"[\w.\-]{1,200}", item):
            raise CheckpointError(f"{where}: {field} {str(item)[:80]!r} must be a plain module name "
                                  "(letters, digits, '_', '.', '-')")

