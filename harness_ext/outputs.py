"""Output locations are checked before any work starts: an unwritable ``--out``,
``--output_path`` or ``cache_dir`` is found in the first second, not after hours."""

from __future__ import annotations

import os
import uuid
from pathlib import Path


class OutputError(ValueError):
    """An output location that cannot be written (one line: which, why, the fix)."""


def writable_dir(folder: str | os.PathLike) -> str | None:
    """None when ``folder`` (or its nearest existing parent, where it would be created)
    accepts a new file; else why not. Probes by creating and removing a file, so ACLs,
    read-only mounts and full quotas count, not just mode bits."""
    probe = Path(folder).expanduser()
    while not probe.exists():
        if probe.parent == probe:
            return f"{folder}: no existing parent folder"
        probe = probe.parent
    if not probe.is_dir():
        return f"{probe} is a file, not a folder"
    try:
        handle = probe / f".xtreme-write-test-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        handle.write_bytes(b"")
        handle.unlink()
    except OSError as err:
        return f"{probe}: {err.strerror or err}"
    return None


def require_writable(folder: str | os.PathLike, flag: str) -> None:
    """Raise :class:`OutputError` naming ``flag`` when ``folder`` cannot be written."""
    problem = writable_dir(folder)
    if problem:
        raise OutputError(f"{flag} {folder} cannot be written ({problem}); choose a writable folder "
                          "(nothing was run)")


def output_path_from_argv(argv: list[str]) -> str | None:
    """The value of lm-eval's ``--output_path``/``-o`` in a command line, if any."""
    for i, arg in enumerate(argv):
        if arg in ("--output_path", "-o") and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--output_path="):
            return arg.split("=", 1)[1]
    return None
