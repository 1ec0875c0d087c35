"""Which faiss is installed, and on which GPUs it may run.

Why this exists: on the GPU machines users have, faiss fails in ways no ``try``
can catch in the search itself.

* Two faiss wheels in one environment (``faiss-cpu`` with ``faiss-gpu-cu12``)
  share ``faiss/__init__.py`` and ``swigfaiss.py`` but not the extension module, so
  ``import faiss`` raises (``AttributeError: ... delete_GpuResourcesVector``) or
  silently loads the CPU build. :func:`faiss_info` imports faiss once, catches
  *any* exception, lists the installed faiss distributions, and names the
  problem and its fix in one warning. Retrieval then runs on faiss CPU or on
  torch's exact search (:mod:`harness_ext.retrieval.search`).
* A GPU build without kernels for the device (``faiss-gpu-cu12`` 1.14.x carries
  sm_70 and sm_80 cubins only, no PTX) aborts the process through
  ``FAISS_ASSERT`` on an H100 (sm_90): no exception, no fallback. So faiss is
  handed a GPU only after :func:`build_archs` has read the CUDA fat binaries of
  the installed faiss libraries (the same headers ``cuobjdump`` lists) and
  :func:`runs_on` says the device can run one of them. When the libraries say
  nothing, one child process tries a tiny GPU search (:func:`probe_in_child`):
  if faiss aborts there, this process survives and uses torch.

``XTREME_FAISS_GPU=off`` never gives faiss a GPU; ``XTREME_FAISS_GPU=force`` skips
the kernel check (for a build this module cannot read).
"""

from __future__ import annotations

import functools
import logging
import os
import struct
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

log = logging.getLogger(__name__)

#: the pip distributions that install the ``faiss`` package
FAISS_DISTRIBUTIONS = (
    "faiss-cpu", "faiss-gpu", "faiss-gpu-cu11", "faiss-gpu-cu12", "faiss-gpu-cu12-cuvs", "faiss-gpu-cuvs", "faiss",
)
#: what a faiss GPU build must expose before we use it
GPU_SYMBOLS = (
    "StandardGpuResources", "GpuResourcesVector", "GpuMultipleClonerOptions", "index_cpu_to_gpu_multiple_py",
    "get_num_gpus", "GpuIndexFlatConfig", "GpuIndexFlatIP",
)
#: the one GPU install line (README, "GPU servers"); leaves exactly one faiss build installed
GPU_FIX = "pip uninstall -y faiss-cpu faiss-gpu-cu12 faiss-gpu && pip install 'faiss-gpu>=1.15.1'"
CPU_FIX = "pip uninstall -y faiss-cpu faiss-gpu-cu12 faiss-gpu && pip install 'faiss-cpu>=1.8'"
#: faiss's GPU k-selection limit (``GPU_MAX_SELECTION_K``); larger k is served by torch
GPU_MAX_K = 2048

_FATBIN_MAGIC = struct.pack("<I", 0xBA55ED50)
_PTX, _CUBIN = 1, 2


@dataclass(frozen=True)
class FaissInfo:
    """What ``import faiss`` gave, and what is wrong with it (one line with the fix), if anything."""

    module: Any | None
    distributions: tuple[str, ...] = ()
    gpu_build: bool = False
    problem: str | None = None
    missing: tuple[str, ...] = field(default=())


def installed_distributions() -> tuple[str, ...]:
    """``name==version`` of every installed faiss wheel (more than one means they overwrite each other)."""
    from importlib import metadata

    found = []
    for name in FAISS_DISTRIBUTIONS:
        try:
            found.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return tuple(found)


def _import_faiss() -> Any:
    import faiss

    return faiss


def inspect_faiss(
    import_faiss: Callable[[], Any] = _import_faiss,
    distributions: Callable[[], Sequence[str]] = installed_distributions,
    cuda_visible: bool | None = None,
) -> FaissInfo:
    """Import faiss and judge the install (no warning here; :func:`faiss_info` warns once)."""
    dists = tuple(distributions())
    names = [d.split("==")[0] for d in dists]
    gpu_wanted = any(n != "faiss-cpu" for n in names)
    fix = GPU_FIX if (gpu_wanted or cuda_visible) else CPU_FIX
    try:
        module = import_faiss()
    except ImportError as exc:
        if not dists:
            return FaissInfo(None, dists, problem=None)  # not installed: torch exact search, nothing broken
        return FaissInfo(None, dists, problem=f"faiss does not import ({type(exc).__name__}: {exc}); fix: {fix}")
    except Exception as exc:  # noqa: BLE001 - a half-overwritten install raises AttributeError and others
        both = f" ({' and '.join(dists)} are installed over each other)" if len(dists) > 1 else ""
        return FaissInfo(None, dists, problem=f"faiss does not import{both}: {type(exc).__name__}: {exc}; fix: {fix}")
    missing = tuple(s for s in GPU_SYMBOLS if not hasattr(module, s))
    gpu_build = not missing
    if len(dists) > 1:
        which = "GPU" if gpu_build else "CPU"
        return FaissInfo(module, dists, gpu_build, missing=missing, problem=(
            f"{' and '.join(dists)} are installed over each other (the {which} build was loaded); fix: {fix}"))
    if gpu_wanted and not gpu_build:
        return FaissInfo(module, dists, gpu_build, missing=missing, problem=(
            f"{dists[0]} is installed but faiss lacks {', '.join(missing)} (a CPU build shadows it); fix: {GPU_FIX}"))
    return FaissInfo(module, dists, gpu_build, missing=missing)


@functools.lru_cache(maxsize=1)
def faiss_info() -> FaissInfo:
    """:func:`inspect_faiss` once per process; a broken install is named in one warning."""
    info = inspect_faiss(_import_faiss, installed_distributions, cuda_visible=_torch_cuda_count() > 0)
    if info.problem:
        fallback = "faiss CPU" if info.module is not None else "torch exact search"
        log.warning("%s. Retrieval continues on %s (same neighbours, slower).", info.problem, fallback)
    elif info.module is None:
        log.info("faiss is not installed: retrieval uses torch's exact search ('.[cpu]' or '.[gpu]' adds faiss)")
    return info


def faiss_module() -> Any | None:
    """The faiss module, or None when it is absent or does not import."""
    return faiss_info().module


# --------------------------------------------------------------------------- kernels
def fatbin_archs(data: bytes) -> tuple[frozenset[int], frozenset[int]]:
    """(cubin SM versions, PTX SM versions) in the CUDA fat binaries embedded in ``data``.

    Reads the fatbin container headers (magic 0xBA55ED50, 16-byte header, then
    entries of kind 1 = PTX / 2 = ELF cubin with the SM version at byte 28), the
    same facts ``cuobjdump --list-elf --list-ptx`` prints.
    """
    cubins: set[int] = set()
    ptx: set[int] = set()
    pos = 0
    while (start := data.find(_FATBIN_MAGIC, pos)) >= 0:
        if start + 16 > len(data):
            break
        _version, header_size, fat_size = struct.unpack_from("<HHQ", data, start + 4)
        if header_size != 16 or fat_size == 0 or start + 16 + fat_size > len(data):
            pos = start + 4
            continue
        entry, end = start + 16, start + 16 + fat_size
        while entry + 32 <= end:
            kind, _ev, entry_header, payload = struct.unpack_from("<HHIQ", data, entry)
            sm = struct.unpack_from("<I", data, entry + 28)[0]
            if kind == _CUBIN:
                cubins.add(sm)
            elif kind == _PTX:
                ptx.add(sm)
            if entry_header == 0:
                break
            entry += entry_header + payload
        pos = end
    return frozenset(cubins), frozenset(ptx)


def faiss_libraries(module: Any) -> list[Path]:
    """The shared libraries of an installed faiss: its package folder and the wheel's ``*.libs`` folder."""
    package = Path(module.__file__).parent
    found = sorted(package.glob("*.so*"))
    for libs in package.parent.glob("faiss*.libs"):
        found += sorted(p for p in libs.glob("libfaiss*.so*"))
    return found


@functools.lru_cache(maxsize=4)
def _archs_of(paths: tuple[str, ...]) -> tuple[frozenset[int], frozenset[int]]:
    cubins: set[int] = set()
    ptx: set[int] = set()
    for path in paths:
        c, p = fatbin_archs(Path(path).read_bytes())
        cubins |= c
        ptx |= p
    return frozenset(cubins), frozenset(ptx)


def build_archs(module: Any) -> tuple[frozenset[int], frozenset[int]] | None:
    """(cubins, PTX) of the installed faiss build, or None when its libraries carry no fat binary."""
    try:
        cubins, ptx = _archs_of(tuple(str(p) for p in faiss_libraries(module)))
    except (OSError, TypeError, AttributeError):
        return None
    return (cubins, ptx) if (cubins or ptx) else None


def runs_on(capability: tuple[int, int], cubins: Iterable[int], ptx: Iterable[int]) -> bool:
    """Whether a device of ``capability`` can run a build with these cubins / PTX.

    CUDA's rules: a cubin for sm_XY runs on sm_XZ with Z >= Y (same major only);
    PTX for compute_XY is compiled by the driver for any device >= XY.
    """
    major, minor = capability
    sm = major * 10 + minor
    if any(c // 10 == major and c % 10 <= minor for c in cubins):
        return True
    return any(p <= sm for p in ptx)


_PROBE = """
import sys, numpy as np, faiss
device = int(sys.argv[1])
res = faiss.StandardGpuResources()
config = faiss.GpuIndexFlatConfig(); config.device = device
index = faiss.GpuIndexFlatIP(res, 8, config)
x = np.eye(8, dtype=np.float32)
index.add(x)
_, ids = index.search(x, 1)
sys.exit(0 if ids[:, 0].tolist() == list(range(8)) else 3)
"""


@functools.lru_cache(maxsize=16)
def probe_in_child(device: int, timeout: float = 180.0) -> bool:
    """One tiny faiss GPU search on ``device`` in a child process: True when it gives the right answer.

    faiss reports a missing kernel by aborting the process, so it is tried where an
    abort costs nothing.
    """
    try:
        done = subprocess.run([sys.executable, "-c", _PROBE, str(device)], capture_output=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return False
    if done.returncode != 0:
        tail = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["(no output)"]
        log.warning("faiss GPU probe on device %d failed (exit %d: %s)", device, done.returncode, tail[0])
    return done.returncode == 0


def _torch_cuda_count() -> int:
    try:
        import torch

        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except Exception:  # noqa: BLE001 - no usable torch CUDA is the same as no GPU here
        return 0


def _capability(device: int) -> tuple[int, int] | None:
    try:
        import torch

        return tuple(torch.cuda.get_device_capability(device))  # type: ignore[return-value]
    except Exception:  # noqa: BLE001
        return None


def usable_gpus(
    info: FaissInfo | None = None,
    capability: Callable[[int], tuple[int, int] | None] = _capability,
    archs: Callable[[Any], tuple[frozenset[int], frozenset[int]] | None] = build_archs,
    probe: Callable[[int], bool] = probe_in_child,
) -> list[int]:
    """GPU ids faiss may be given: a working GPU build with kernels for each device."""
    info = info if info is not None else faiss_info()
    mode = os.environ.get("XTREME_FAISS_GPU", "auto").lower()
    if mode in ("off", "0", "no", "false") or info.module is None or not info.gpu_build:
        return []
    try:
        count = int(info.module.get_num_gpus())
    except Exception:  # noqa: BLE001 - a broken driver
        return []
    if mode == "force":
        return list(range(count))
    build = archs(info.module)
    usable = []
    for device in range(count):
        cap = capability(device)
        if build is not None and cap is not None:
            ok = runs_on(cap, *build)
            if not ok:
                _warn_no_kernels(device, cap, build)
        else:
            ok = probe(device)
        if ok:
            usable.append(device)
    return usable


@functools.lru_cache(maxsize=16)
def _warn_no_kernels(device: int, cap: tuple[int, int], build: tuple[frozenset[int], frozenset[int]]) -> None:
    cubins = ", ".join(f"sm_{c}" for c in sorted(build[0])) or "none"
    ptx = ", ".join(f"compute_{p}" for p in sorted(build[1])) or "none"
    log.warning(
        "the installed faiss has no kernels for GPU %d (sm_%d%d; build has cubins %s, PTX %s): retrieval uses "
        "torch's exact search on that GPU instead; for faiss on it: %s", device, cap[0], cap[1], cubins, ptx, GPU_FIX,
    )


@functools.lru_cache(maxsize=1)
def faiss_gpus() -> tuple[int, ...]:
    """:func:`usable_gpus`, once per process."""
    return tuple(usable_gpus())


def torch_cuda_available() -> bool:
    return _torch_cuda_count() > 0


# --------------------------------------------------------------------------- GPU resources
_RESOURCES: dict[int, Any] = {}


def gpu_resources(faiss: Any, device: int) -> Any:
    """One ``StandardGpuResources`` per GPU per process (faiss's ``index_cpu_to_all_gpus`` makes
    new ones, with their cuBLAS handles and scratch memory, on every call)."""
    if device not in _RESOURCES:
        _RESOURCES[device] = faiss.StandardGpuResources()
    return _RESOURCES[device]


def free_torch_cache() -> None:
    """Give torch's cached-but-free GPU blocks back before faiss allocates outside torch's allocator."""
    try:
        import torch

        if torch.cuda.is_available() and torch.cuda.is_initialized():
            torch.cuda.empty_cache()
    except Exception:  # noqa: BLE001
        pass
