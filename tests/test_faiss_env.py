"""faiss as users have it: broken double installs, builds without kernels for the GPU, k > 2048,
GPU resources made once, small databases on one GPU. All on the CPU, with fakes that behave as
faiss does (a GPU index refuses k > 2048; a missing kernel would abort, so it must never be reached)."""

from __future__ import annotations

import logging
import struct
from types import SimpleNamespace

import numpy as np
import pytest

from harness_ext.retrieval import faiss_env, search
from harness_ext.retrieval.faiss_env import FaissInfo, fatbin_archs, inspect_faiss, runs_on, usable_gpus
from harness_ext.retrieval.search import FlatIndex, knn, l2_normalize


def random_unit(n: int, dim: int, seed: int) -> np.ndarray:
    return l2_normalize(np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32))


def _good_gpu_module() -> SimpleNamespace:
    return SimpleNamespace(**{name: object() for name in faiss_env.GPU_SYMBOLS})


# --------------------------------------------------------------------------- install detection
def test_double_install_that_breaks_the_import_is_named_with_the_fix():
    def broken():
        raise AttributeError("module 'faiss._swigfaiss' has no attribute 'delete_GpuResourcesVector'")

    info = inspect_faiss(broken, lambda: ("faiss-cpu==1.15.1", "faiss-gpu-cu12==1.14.1.post1"))
    assert info.module is None
    assert "faiss-cpu==1.15.1 and faiss-gpu-cu12==1.14.1.post1" in info.problem
    assert "delete_GpuResourcesVector" in info.problem and faiss_env.GPU_FIX in info.problem


def test_double_install_that_loads_the_cpu_build_is_named():
    cpu_only = SimpleNamespace(IndexFlatIP=object)
    info = inspect_faiss(lambda: cpu_only, lambda: ("faiss-cpu==1.15.1", "faiss-gpu-cu12==1.14.1.post1"))
    assert info.module is cpu_only and not info.gpu_build
    assert "installed over each other (the CPU build was loaded)" in info.problem


def test_gpu_wheel_without_gpu_symbols_is_named():
    info = inspect_faiss(lambda: SimpleNamespace(), lambda: ("faiss-gpu==1.15.1",))
    assert not info.gpu_build and "StandardGpuResources" in info.problem


def test_clean_installs_and_no_faiss_are_not_problems():
    assert inspect_faiss(_good_gpu_module, lambda: ("faiss-gpu==1.15.1",)).problem is None
    assert inspect_faiss(_good_gpu_module, lambda: ("faiss-gpu==1.15.1",)).gpu_build
    assert inspect_faiss(lambda: SimpleNamespace(), lambda: ("faiss-cpu==1.15.1",)).problem is None

    def absent():
        raise ImportError("No module named 'faiss'")

    info = inspect_faiss(absent, lambda: ())
    assert info.module is None and info.problem is None


def test_broken_faiss_warns_once_and_retrieval_continues_with_torch(monkeypatch, caplog):
    def broken():
        raise RuntimeError("undefined symbol: _ZN5faiss3gpu")

    monkeypatch.setattr(faiss_env, "_import_faiss", broken)
    monkeypatch.setattr(faiss_env, "installed_distributions", lambda: ("faiss-gpu==1.15.1",))
    faiss_env.faiss_info.cache_clear()
    faiss_env.faiss_gpus.cache_clear()
    try:
        with caplog.at_level(logging.WARNING, logger="harness_ext.retrieval.faiss_env"):
            for _ in range(3):
                assert search.resolve_backend("cpu") == "torch"
                assert search.resolve_backend("auto") == "torch"
            queries, database = random_unit(20, 16, 0), random_unit(50, 16, 1)
            _, ids = knn(queries, database, 3)
        warnings = [r for r in caplog.records if "faiss does not import" in r.getMessage()]
        assert len(warnings) == 1 and "torch exact search" in warnings[0].getMessage()
        expected = np.argsort(-(queries @ database.T), axis=1)[:, :3]
        np.testing.assert_array_equal(ids, expected)
    finally:
        faiss_env.faiss_info.cache_clear()
        faiss_env.faiss_gpus.cache_clear()


# --------------------------------------------------------------------------- kernels
def fatbin(entries: list[tuple[int, int]]) -> bytes:
    """A CUDA fat binary container as nvcc embeds it: (kind, sm) entries, 1 = PTX, 2 = cubin."""
    body = b""
    for kind, sm in entries:
        payload = b"\x7fELF" + bytes(60)
        header = struct.pack("<HHIQIIII", kind, 0x101, 64, len(payload), 0, len(payload), 0, sm)  # SM at byte 28
        header += bytes(64 - len(header))
        body += header + payload
    return struct.pack("<IHHQ", 0xBA55ED50, 1, 16, len(body)) + body


def test_fatbin_headers_give_cubins_and_ptx():
    # faiss-gpu-cu12 1.14.1.post1 (libfaiss read with this function: 182 fatbins, sm_70 + sm_80, no PTX)
    data = b"junk" * 100 + fatbin([(2, 70), (2, 80)]) + b"\x50\xed\x55\xba broken" + fatbin([(2, 70), (2, 80)])
    assert fatbin_archs(data) == ({70, 80}, set())
    # faiss-gpu 1.15.1: sm_70/75/80/86/89/90 cubins + compute_90 PTX
    official = fatbin([(2, 70), (2, 75), (2, 80), (2, 86), (2, 89), (2, 90), (1, 90)])
    assert fatbin_archs(official) == ({70, 75, 80, 86, 89, 90}, {90})
    assert fatbin_archs(b"no fatbin here") == (set(), set())


@pytest.mark.parametrize("capability, cubins, ptx, ok", [
    ((9, 0), {70, 80}, set(), False),  # H100/H200 with faiss-gpu-cu12 1.14: would abort the process
    ((9, 0), {70, 75, 80, 86, 89, 90}, {90}, True),  # H100 with faiss-gpu 1.15.1
    ((8, 6), {70, 80}, set(), True),  # A10 runs sm_80 cubins (same major, higher minor)
    ((8, 9), {70, 80}, set(), True),  # L4
    ((7, 5), {70, 80}, set(), True),  # T4 runs sm_70 cubins
    ((8, 0), {86}, set(), False),  # a newer minor's cubin does not run on an older one
    ((10, 0), {70, 80, 90}, {90}, True),  # Blackwell: the driver compiles compute_90 PTX
    ((12, 0), {70, 80, 90}, set(), False),
    ((6, 1), {70, 80}, {70}, False),
])
def test_runs_on_follows_cuda_compatibility(capability, cubins, ptx, ok):
    assert runs_on(capability, cubins, ptx) is ok


def test_usable_gpus_reads_the_build_and_probes_only_when_it_cannot(monkeypatch):
    monkeypatch.delenv("XTREME_FAISS_GPU", raising=False)
    module = _good_gpu_module()
    module.get_num_gpus = lambda: 2
    info = FaissInfo(module, ("faiss-gpu-cu12==1.14.1.post1",), gpu_build=True)
    caps = {0: (8, 0), 1: (9, 0)}
    probed: list[int] = []

    def probe(device: int) -> bool:
        probed.append(device)
        return True

    cu12 = lambda m: (frozenset({70, 80}), frozenset())  # noqa: E731
    assert usable_gpus(info, caps.get, cu12, probe) == [0]  # never the H100
    assert probed == []
    assert usable_gpus(info, caps.get, lambda m: None, probe) == [0, 1]  # unreadable build: ask a child
    assert probed == [0, 1]
    monkeypatch.setenv("XTREME_FAISS_GPU", "off")
    assert usable_gpus(info, caps.get, cu12, probe) == []
    monkeypatch.setenv("XTREME_FAISS_GPU", "force")
    assert usable_gpus(info, caps.get, cu12, probe) == [0, 1]
    cpu = FaissInfo(SimpleNamespace(get_num_gpus=lambda: 2), ("faiss-cpu==1.15.1",), gpu_build=False)
    assert usable_gpus(cpu, caps.get, cu12, probe) == []


def test_probe_in_child_survives_a_crashing_faiss(monkeypatch, tmp_path):
    """faiss aborts on a missing kernel; the probe runs where that abort costs only the child."""
    (tmp_path / "faiss").mkdir()
    (tmp_path / "faiss" / "__init__.py").write_text("import os\nos.abort()\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    faiss_env.probe_in_child.cache_clear()
    try:
        assert faiss_env.probe_in_child(0, timeout=60) is False
    finally:
        faiss_env.probe_in_child.cache_clear()


def test_auto_uses_torch_on_the_gpu_when_faiss_cannot(monkeypatch):
    monkeypatch.setattr(search, "faiss_gpu_count", lambda: 0)
    monkeypatch.setattr(faiss_env, "torch_cuda_available", lambda: True)
    assert search.resolve_backend("auto") == "torch"
    assert search.default_device("auto", None) == "cuda"
    assert search.resolve_backend("gpu") == "torch"
    assert search.default_device("torch", None) == "cpu"  # an explicit torch backend stays where it was told


# --------------------------------------------------------------------------- the GPU index, faked
class FakeGpuFaiss:
    """faiss's GPU API over the real CPU index: counts resources, records how indexes are placed,
    and refuses k > 2048 as faiss's GPU k-selection does."""

    def __init__(self, real) -> None:
        self.real = real
        self.resources_made = 0
        self.placements: list[tuple[list[int], bool]] = []
        fake = self

        class StandardGpuResources:
            def __init__(self) -> None:
                fake.resources_made += 1

        self.StandardGpuResources = StandardGpuResources
        self.IndexFlatIP = real.IndexFlatIP

    @staticmethod
    def GpuMultipleClonerOptions():
        return SimpleNamespace(shard=False)

    def index_cpu_to_gpu_multiple_py(self, resources, index, co=None, gpus=None):
        assert len(resources) == len(gpus)
        self.placements.append((list(gpus), bool(co.shard)))

        class GpuIndex:
            def add(self, x):
                index.add(x)

            def search(self, x, k):
                if k > faiss_env.GPU_MAX_K:
                    raise AssertionError("Error: 'k <= GPU_MAX_SELECTION_K' failed")
                return index.search(x, k)

        return GpuIndex()


@pytest.fixture
def fake_gpu(monkeypatch):
    import faiss

    fake = FakeGpuFaiss(faiss)
    freed: list[bool] = []
    monkeypatch.setattr(faiss_env, "faiss_module", lambda: fake)
    monkeypatch.setattr(faiss_env, "faiss_gpus", lambda: (0, 1))
    monkeypatch.setattr(faiss_env, "_RESOURCES", {})
    monkeypatch.setattr(faiss_env, "free_torch_cache", lambda: freed.append(True))
    fake.freed = freed
    return fake


def test_gpu_resources_are_made_once_and_small_databases_stay_on_one_gpu(fake_gpu):
    queries = random_unit(30, 16, 2)
    for seed in range(72):  # Tatoeba: one index per language and direction
        FlatIndex(random_unit(100, 16, seed), backend="gpu", device="cpu").search(queries, 1)
    assert fake_gpu.resources_made == 1
    assert all(place == ([0], False) for place in fake_gpu.placements)
    assert len(fake_gpu.freed) == 72  # torch's cache emptied before each faiss allocation


def test_large_databases_are_sharded_over_the_usable_gpus(fake_gpu, monkeypatch):
    monkeypatch.setattr(search, "SHARD_ABOVE_BYTES", 1000)
    index = FlatIndex(random_unit(500, 16, 0), backend="gpu", device="cpu")
    assert fake_gpu.placements == [([0, 1], True)] and fake_gpu.resources_made == 2
    cpu = knn(random_unit(40, 16, 1), index.database, 4, backend="cpu")
    np.testing.assert_array_equal(index.search(random_unit(40, 16, 1), 4)[1], cpu[1])


def test_k_above_the_gpu_limit_is_served_with_faiss_cpu_neighbours(fake_gpu):
    database, queries = random_unit(3000, 16, 0), random_unit(25, 16, 1)
    index = FlatIndex(database, backend="gpu", device="cpu")
    scores, ids = index.search(queries, 2500)  # the fake GPU index would raise: torch serves it
    assert ids.shape == (25, 2500)
    cpu_scores, cpu_ids = knn(queries, database, 2500, backend="cpu")
    np.testing.assert_allclose(scores, cpu_scores, atol=1e-5)
    same = ids == cpu_ids
    # where the order differs the scores must tie (within float32 rounding)
    np.testing.assert_allclose(scores[~same], cpu_scores[~same], atol=1e-6)
    assert same.mean() > 0.99
    small_scores, small_ids = index.search(queries, 4)  # small k still goes to the (fake) GPU index
    np.testing.assert_array_equal(small_ids, cpu_ids[:, :4])


def test_torch_exact_search_matches_faiss_cpu_even_with_tf32_requested():
    import torch

    database, queries = random_unit(2000, 64, 3), random_unit(300, 64, 4)
    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("medium")
    try:
        t_scores, t_ids = knn(queries, database, 10, backend="torch")
        assert torch.get_float32_matmul_precision() == "medium"  # restored after the search
    finally:
        torch.set_float32_matmul_precision(before)
    c_scores, c_ids = knn(queries, database, 10, backend="cpu")
    np.testing.assert_array_equal(t_ids, c_ids)
    np.testing.assert_allclose(t_scores, c_scores, atol=1e-5)
