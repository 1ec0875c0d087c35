"""A stranger's checkpoint or checkpoints.yaml runs nothing, fetches nothing and cannot take
the machine down (docs/reliability.md, "Trust boundaries"). Each class of attack is planted
with a payload that would only create a marker file; the marker must never appear, the
refusal is one line naming the file and the field, and nothing big is allocated first."""

from __future__ import annotations

import ast
import json
import os
import pickle
import struct
import sys
import time
import zipfile
from pathlib import Path

import pytest
import torch

from harness_ext.backends import CheckpointError, load_checkpoint
from harness_ext.backends._guards import MAX_JSON_DEPTH
from harness_ext.backends.describe import describe
from tests.helpers.tiny_models import tiny_bert, tiny_xlmr

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture()
def marker(tmp_path: Path) -> Path:
    return tmp_path / "PWNED"


def _one_line(err: pytest.ExceptionInfo, *names: str) -> str:
    text = str(err.value)
    assert "\n" not in text, text
    for name in names:
        assert name in text, (name, text)
    return text


def _custom_code_folder(tmp_path: Path, marker: Path) -> Path:
    """An HF folder whose config names custom code; importing it creates the marker."""
    folder = tiny_bert(tmp_path, head="sequence-classification", name="custom")
    (folder / "configuration_evil.py").write_text(
        f"open({str(marker)!r}, 'w').close()\n"
        "from transformers import BertConfig\n\nclass EvilConfig(BertConfig):\n    model_type = 'evil'\n")
    config = json.loads((folder / "config.json").read_text())
    config.update(model_type="evil", auto_map={"AutoConfig": "configuration_evil.EvilConfig"})
    (folder / "config.json").write_text(json.dumps(config))
    return folder


# --------------------------------------------------------------------------- 1. custom code
def test_trust_remote_code_is_refused_everywhere(tmp_path: Path, marker: Path) -> None:
    from harness_ext.adapters.xtreme_lm import XtremeLM
    from harness_ext.errors import is_user_error
    from harness_ext.systems import validate_file

    folder = _custom_code_folder(tmp_path, marker)
    for call in (lambda: load_checkpoint(str(folder), "sequence-classification"),
                 lambda: describe(str(folder), "sequence-classification")):
        with pytest.raises(CheckpointError) as err:
            call()
        _one_line(err, "auto_map", "config.json", "convert the checkpoint")
    for value in (True, "true", "1"):
        with pytest.raises(CheckpointError) as err:
            load_checkpoint(str(folder), "sequence-classification", trust_remote_code=value)
        _one_line(err, "trust_remote_code", "refused")
    with pytest.raises(ValueError) as err:
        XtremeLM.create_from_arg_string(f"pretrained={folder},trust_remote_code=true", {"device": "cpu"})
    assert is_user_error(err.value) and "trust_remote_code" in str(err.value) and "\n" not in str(err.value)
    yaml_file = tmp_path / "c.yaml"
    yaml_file.write_text("systems:\n  a:\n    family: x\n    size: 1\n    checkpoints:\n"
                         "      xnli: {source: ./custom, options: {trust_remote_code: true}}\n"
                         "  b: {family: x, size: 1, checkpoints: {xnli: ./custom}}\n")
    problems = validate_file(yaml_file)
    assert any("trust_remote_code is refused" in p.message for p in problems), problems
    assert not marker.exists(), "checkpoint code ran"


def test_a_run_with_a_hostile_checkpoint_ends_in_one_line(tmp_path: Path, shared_data: Path, marker: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Through lm-eval (``api.evaluate``): custom code is refused by the preflight in one line, and a
    checkpoint that fails deep inside a library (here: RecursionError) is one line too."""
    from harness_ext import api
    from harness_ext.adapters.xtreme_lm import PreflightError
    from harness_ext.backends import describe as describe_module
    from tests.test_run_safety import _data_with

    monkeypatch.setenv("XTREME_DATA_DIR", str(_data_with(tmp_path, shared_data, "xquad")))
    folder = _custom_code_folder(tmp_path, marker)
    run = lambda: api.evaluate(["xtreme-xquad-en"], pretrained=str(folder),  # noqa: E731
                               model_args={"use_cache": False, "device": "cpu"}, limit=2)
    with pytest.raises(PreflightError) as err:
        run()
    _one_line(err, "auto_map", "xtreme_xquad")
    folder = tiny_bert(tmp_path, head="question-answering", name="plain")
    monkeypatch.setattr(describe_module, "describe", lambda *a, **k: (_ for _ in ()).throw(RecursionError("deep")))
    with pytest.raises(PreflightError) as err:
        api.evaluate(["xtreme-xquad-en"], pretrained=str(folder), model_args={"use_cache": False, "device": "cpu"},
                     limit=2)
    _one_line(err, "RecursionError", str(folder))
    assert not marker.exists()


def test_every_transformers_load_passes_trust_remote_code_false() -> None:
    """No call of ``from_pretrained`` in the package may leave ``trust_remote_code`` unset
    (transformers would ask on a terminal, and 'y' runs the checkpoint's code)."""
    missing = []
    for file in sorted((REPO / "harness_ext").rglob("*.py")):
        for node in ast.walk(ast.parse(file.read_text())):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "from_pretrained"):
                continue
            owner = ast.unparse(node.func.value)
            if owner.startswith(("PeftModel", "PeftConfig")):  # peft runs no checkpoint code
                continue
            explicit = any(k.arg == "trust_remote_code" and isinstance(k.value, ast.Constant) and k.value.value is False
                           for k in node.keywords)
            through = any(k.arg is None and ast.unparse(k.value) == "hub" for k in node.keywords)  # hf.py's dict
            if not (explicit or through):
                missing.append(f"{file.relative_to(REPO)}:{node.lineno}")
    assert not missing, missing
    hf = (REPO / "harness_ext/backends/hf.py").read_text()
    assert '"trust_remote_code": False' in hf


# --------------------------------------------------------------------------- 2. locations
def test_hub_attention_kernel_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, marker: Path) -> None:
    import transformers.integrations.hub_kernels as hub_kernels

    def fetch(*args, **kwargs):  # what downloading a kernel would do
        marker.touch()
        raise RuntimeError("fetched")

    for name in ("load_and_register_attn_kernel", "get_kernel"):
        if hasattr(hub_kernels, name):
            monkeypatch.setattr(hub_kernels, name, fetch)
    folder = tiny_bert(tmp_path, head="encoder", name="kernel")
    config = json.loads((folder / "config.json").read_text())
    config["attn_implementation"] = "stranger/evil-kernel"
    (folder / "config.json").write_text(json.dumps(config))
    for call in (lambda: load_checkpoint(str(folder), "encoder"), lambda: describe(str(folder), "encoder")):
        with pytest.raises(CheckpointError) as err:
            call()
        _one_line(err, "config.json", "attn_implementation", "stranger/evil-kernel")
    assert not marker.exists()


def test_tensorstore_specs_stay_local_and_inside(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ts = pytest.importorskip("tensorstore")
    import numpy as np

    from harness_ext.backends import flax

    ckpt = tmp_path / "checkpoint_1"
    ckpt.mkdir()
    outside = tmp_path / "outside"
    for where in (ckpt / "arr", outside):
        ts.open({"driver": "zarr", "kvstore": {"driver": "file", "path": str(where)}, "dtype": "float32",
                 "metadata": {"shape": [4, 4], "chunks": [4, 4]}}, create=True).result().write(
            np.ones((4, 4), np.float32)).result()
    opened: list[dict] = []
    real_open = ts.open
    monkeypatch.setattr(ts, "open", lambda spec, *a, **k: (opened.append(spec), real_open(spec, *a, **k))[1])
    good = {"driver": "zarr", "kvstore": {"driver": "file", "path": "arr"}}
    assert flax._read_ts(good, ckpt).shape == (4, 4)
    bad = {
        "http": {"driver": "zarr", "kvstore": {"driver": "http", "base_url": "http://127.0.0.1:9/", "path": "arr"}},
        "url": {"driver": "zarr", "kvstore": "http://127.0.0.1:9/arr"},
        "absolute": {"driver": "zarr", "kvstore": {"driver": "file", "path": str(outside)}},
        "dotdot": {"driver": "zarr", "kvstore": {"driver": "file", "path": "../outside"}},
        "gcs-dotdot": {"driver": "zarr", "kvstore": {"driver": "gcs", "bucket": "b", "path": "../outside"}},
        "driver": {"driver": "json", "kvstore": {"driver": "file", "path": "arr"}},
    }
    for name, spec in bad.items():
        with pytest.raises(CheckpointError) as err:
            flax._read_ts(spec, ckpt)
        _one_line(err, "TensorStore")
    assert len(opened) == 1 and opened[0]["kvstore"] == {"driver": "file", "path": str((ckpt / "arr").resolve())}
    # a spec's own extras (create/delete flags, contexts, metadata overrides) are dropped
    spec = flax.ts_spec({**good, "create": True, "delete_existing": True, "context": {"x": 1}}, ckpt, ckpt)
    assert set(spec) == {"driver", "kvstore", "open"}


def test_recorded_locations_outside_the_folder_are_not_followed(tmp_path: Path) -> None:
    pytest.importorskip("peft")
    from harness_ext.backends._guards import named_location

    root = tmp_path / "run"
    (root / "inside").mkdir(parents=True)
    assert named_location("xlm-roberta-base", root) == "xlm-roberta-base"  # a hub id: like one the user typed
    assert named_location("inside", root) == str((root / "inside").resolve())
    for value in ("/etc", "../", str(tmp_path), "~/x", "a/../../b/c", 5, None, "x\0y"):
        assert named_location(value, root) is None, value
    base = tiny_xlmr(tmp_path, head="sequence-classification", name="elsewhere")
    adapter = tmp_path / "deep" / "adapter"
    adapter.mkdir(parents=True)
    (adapter / "adapter_config.json").write_text(json.dumps({
        "peft_type": "LORA", "task_type": "SEQ_CLS", "base_model_name_or_path": str(base), "target_modules": ["query"]}))
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(str(adapter), "sequence-classification")
    _one_line(err, "adapter_config.json", "base_model_name_or_path", "base_model=")
    ds = tmp_path / "ds"
    ds.mkdir()
    (ds / "latest").write_text("../elsewhere")
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(str(ds), "encoder", backend="deepspeed")
    _one_line(err, "latest", "tag folder inside the checkpoint")
    tok = tiny_bert(tmp_path, head="encoder", name="tok")
    cfg = json.loads((tok / "tokenizer_config.json").read_text())
    cfg["vocab_file"] = str(tmp_path / "deep" / "secret.txt")
    (tok / "tokenizer_config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(str(tok), "encoder")
    _one_line(err, "tokenizer_config.json", "vocab_file", "outside the checkpoint folder")


# --------------------------------------------------------------------------- 3. memory and CPU
def _legacy_claim(path: Path, numel: int) -> None:
    """A pre-1.6 torch.save file whose one storage claims ``numel`` floats (torch would
    allocate them all before reading)."""
    class Claim(pickle.Pickler):
        def persistent_id(self, obj):
            return ("storage", torch.FloatStorage, "0", "cpu", numel, None) if obj == "S" else None

    with path.open("wb") as fh:
        for header in (0x1950a86a20f9469cfc6c, 1001, {"protocol_version": 1001, "little_endian": True}):
            pickle.dump(header, fh, protocol=2)
        Claim(fh, protocol=2).dump({"w": "S"})
        pickle.dump(["0"], fh, protocol=2)
        fh.write(struct.pack("<q", numel) + b"\0" * 16)


def test_size_claims_are_refused_before_allocating(tmp_path: Path) -> None:
    from harness_ext.backends._torchfile import torch_load

    legacy = tmp_path / "claim.bin"
    _legacy_claim(legacy, 2**37)  # 512 GiB of floats in a 200-byte file
    with pytest.raises(CheckpointError) as err:
        torch_load(legacy, "a test checkpoint")
    _one_line(err, str(legacy), "claim", "nothing was allocated")
    zipped = tmp_path / "claim.pt"  # zip format: torch checks the claim against the (stored) record
    torch.save({"w": torch.zeros(10)}, zipped)
    with zipfile.ZipFile(zipped) as z:
        entries = {name: z.read(name) for name in z.namelist()}
    pkl = next(name for name in entries if name.endswith("data.pkl"))
    body = entries[pkl]
    at = body.index(b"K\n", body.index(b"cpu"))
    entries[pkl] = body[:at] + b"J" + struct.pack("<i", 2**31 - 1) + body[at + 2:]
    with zipfile.ZipFile(zipped, "w", zipfile.ZIP_STORED) as z:
        for name, data in entries.items():
            z.writestr(name, data)
    with pytest.raises(CheckpointError) as err:
        torch_load(zipped, "a test checkpoint")
    _one_line(err, str(zipped), "record size")
    folder = tiny_bert(tmp_path, head="encoder", name="legacy", safe_serialization=False)
    _legacy_claim(folder / "pytorch_model.bin", 2**37)
    for call in (lambda: load_checkpoint(str(folder), "encoder"), lambda: describe(str(folder), "encoder")):
        with pytest.raises(CheckpointError) as err:
            call()
        _one_line(err, "pytorch_model.bin", "nothing was allocated")


def test_zarr_shape_claim_is_refused_before_reading(tmp_path: Path) -> None:
    ts = pytest.importorskip("tensorstore")
    from harness_ext.backends import flax

    ckpt = tmp_path / "checkpoint_1"
    ts.open({"driver": "zarr", "kvstore": {"driver": "file", "path": str(ckpt / "huge")}, "dtype": "float32",
             "metadata": {"shape": [2**18, 2**17], "chunks": [64, 64]}}, create=True).result()  # no chunks written
    start = time.monotonic()
    with pytest.raises(CheckpointError) as err:
        flax._read_ts({"driver": "zarr", "kvstore": {"driver": "file", "path": "huge"}}, ckpt)
    _one_line(err, "huge", "128.0 GiB", "nothing was allocated")
    assert time.monotonic() - start < 10


def test_config_claiming_a_huge_model_is_refused(tmp_path: Path) -> None:
    from transformers import BertConfig

    from harness_ext.backends._common import model_from_state_dict

    folder = tiny_bert(tmp_path, head="encoder", name="small")
    state = load_checkpoint(str(folder), "encoder").model.state_dict()
    config = BertConfig(vocab_size=250_000, hidden_size=8192, num_attention_heads=64, num_hidden_layers=48,
                        intermediate_size=32768)
    with pytest.raises(CheckpointError) as err:
        model_from_state_dict(config, "encoder", state, "ckpt.pt")
    _one_line(err, "ckpt.pt", "the config describes a model of", "pass config=")


def test_compressed_torch_zip_is_refused(tmp_path: Path) -> None:
    from harness_ext.backends._torchfile import torch_load

    plain = tmp_path / "plain.pt"
    torch.save({"w": torch.zeros(1000)}, plain)
    bomb = tmp_path / "bomb.pt"
    with zipfile.ZipFile(plain) as src, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info))
    assert bomb.stat().st_size < plain.stat().st_size
    with pytest.raises(CheckpointError) as err:
        torch_load(bomb, "a test checkpoint")
    _one_line(err, str(bomb), "compressed")
    folder = tiny_bert(tmp_path, head="encoder", name="zipped", safe_serialization=False)
    weights = folder / "pytorch_model.bin"
    data = {i.filename: zipfile.ZipFile(weights).read(i) for i in zipfile.ZipFile(weights).infolist()}
    with zipfile.ZipFile(weights, "w", zipfile.ZIP_DEFLATED) as dst:
        for name, body in data.items():
            dst.writestr(name, body)
    with pytest.raises(CheckpointError) as err:
        describe(str(folder), "encoder")
    _one_line(err, "pytorch_model.bin", "compressed")


def test_backtracking_regex_in_an_adapter_is_bounded(tmp_path: Path) -> None:
    pytest.importorskip("peft")
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForSequenceClassification

    base = tiny_xlmr(tmp_path, head="sequence-classification", name="base")
    lora = get_peft_model(AutoModelForSequenceClassification.from_pretrained(base),
                          LoraConfig(task_type="SEQ_CLS", r=2, target_modules=r".*\.(query|value)"))
    adapter = tmp_path / "adapter"
    lora.save_pretrained(adapter)
    config_file = adapter / "adapter_config.json"
    assert load_checkpoint(str(adapter), "sequence-classification").backend == "peft"  # a fair regex still works
    config = json.loads(config_file.read_text())
    evil_pattern = r"(.{1,9}){1,20}(?<=\1\1)"  # exponential even for the `regex` package's optimiser
    for field, evil in (("target_modules", evil_pattern), ("rank_pattern", {evil_pattern: 4})):
        config_file.write_text(json.dumps({**config, field: evil}))
        start = time.monotonic()
        with pytest.raises(CheckpointError) as err:
            load_checkpoint(str(adapter), "sequence-classification")
        _one_line(err, "adapter_config.json", field, "took over")
        assert time.monotonic() - start < 20
    config_file.write_text(json.dumps({**config, "target_modules": ["query"], "layers_to_transform": [0],
                                       "layers_pattern": "(a+)+b"}))
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(str(adapter), "sequence-classification")
    _one_line(err, "layers_pattern", "plain module name")


# --------------------------------------------------------------------------- 6. bad input
def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_deeply_nested_json_is_one_line(tmp_path: Path) -> None:
    deep = _nested(100_000)
    folder = tiny_bert(tmp_path, head="encoder", name="deep")
    (folder / "config.json").write_text('{"model_type": "bert", "x": ' + deep + "}")
    with pytest.raises(CheckpointError) as err:
        describe(str(folder), "encoder")
    _one_line(err, "config.json", "nested", str(MAX_JSON_DEPTH))
    weights = tiny_bert(tmp_path, head="encoder", name="st") / "model.safetensors"
    header = ('{"__metadata__": {"x": ' + deep + "}}").encode()
    weights.write_bytes(struct.pack("<Q", len(header)) + header)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(str(weights.parent), "encoder")
    _one_line(err, "model.safetensors", "nested")
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(deep)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(str(adapter), "encoder")
    _one_line(err, "adapter_config.json", "nested")


def test_garbage_jiant_args_is_one_line(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    torch.save({"encoder.x": torch.zeros(1)}, run / "best_model.p")
    for body, expected in (("[1, 2]", "expected a JSON object"), ("{not json", "not valid JSON"),
                           (_nested(10_000), "nested")):
        (run / "args.json").write_text(body)
        with pytest.raises(CheckpointError) as err:
            load_checkpoint(str(run), "encoder")
        _one_line(err, "args.json", expected)
    (run / "args.json").write_text(json.dumps({"model_config_path": 5, "hf_pretrained_model_name_or_path": ["x"]}))
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(str(run), "encoder")
    _one_line(err, "pass config=")


def test_legacy_bin_with_a_payload_fails_validate_as_it_fails_the_run(tmp_path: Path, marker: Path) -> None:
    from harness_ext.systems import validate_file

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    folder = tiny_bert(tmp_path, head="encoder", name="legacy", safe_serialization=False)
    state = dict(torch.load(folder / "pytorch_model.bin", weights_only=True))
    state["evil"] = Payload()
    torch.save(state, folder / "pytorch_model.bin", _use_new_zipfile_serialization=False)
    yaml_file = tmp_path / "c.yaml"
    yaml_file.write_text("systems:\n  a: {family: x, size: 1, encoder: ./legacy}\n")
    problems = validate_file(yaml_file)
    assert len(problems) == 1 and "refused" in problems[0].message and "posix.system" in problems[0].message, problems
    with pytest.raises(CheckpointError, match="refused"):
        load_checkpoint(str(folder), "encoder")
    assert not marker.exists()


def test_validate_reads_templates_reports_once_and_goes_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from harness_ext.backends import describe as describe_module
    from harness_ext.systems import validate_file

    tiny_bert(tmp_path, head="encoder", name="enc")
    (tmp_path / "bad.yaml").write_text("xnli:\n  input: 'a\n  b: [\n")
    yaml_file = tmp_path / "c.yaml"
    yaml_file.write_text(
        "systems:\n"
        "  shared: {family: x, size: 1, encoder: ./missing}\n"
        "  t2t: {family: x, size: 1, checkpoints: {xnli: {source: ./enc, head: seq2seq, templates: ./bad.yaml}}}\n"
        "  boom: {family: x, size: 1, checkpoints: {xnli: ./enc}}\n"
        "  malformed: {family: x, size: -1, encoder: ./enc}\n"
        "  fine: {family: x, size: 1, encoder: ./enc}\n")
    real = describe_module.describe

    def flaky(source, head, **kw):
        if head == "sequence-classification":
            raise RecursionError("maximum recursion depth exceeded")
        return real(source, head, **kw)

    monkeypatch.setattr(describe_module, "describe", flaky)
    problems = validate_file(yaml_file)
    by_system = {}
    for p in problems:
        by_system.setdefault(p.system, []).append(p.message)
    assert len(by_system["shared"]) == 1, by_system  # BUCC and Tatoeba share the encoder: said once
    assert any("bad.yaml" in m and "line" in m and "^" not in m for m in by_system["t2t"]), by_system
    assert any("RecursionError" in m for m in by_system["boom"]), by_system
    assert "fine" not in by_system
    assert any("malformed" in m and "size" in m for m in by_system[None]), by_system  # schema error, others still checked
    assert all("\n" not in m for ms in by_system.values() for m in ms)


def test_long_system_names_fit_a_file_name() -> None:
    from harness_ext.sweep import check_folder_names, safe_name

    names = ["x" * 300, "x" * 299 + "y", "\u00e9" * 200]
    folders = [safe_name(n) for n in names]
    assert all(len(f.encode()) <= 120 for f in folders) and len(set(folders)) == 3
    check_folder_names(names, "c.yaml")


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_AS semantics")
def test_refusals_allocate_nothing_under_a_memory_limit(tmp_path: Path) -> None:
    """The legacy storage claim is refused inside a process limited to 3 GiB of address space
    (torch would ask for 512 GiB and die with bad_alloc otherwise)."""
    import subprocess

    legacy = tmp_path / "claim.bin"
    _legacy_claim(legacy, 2**37)
    code = ("import resource, sys; resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30));"
            "from pathlib import Path; from harness_ext.backends._torchfile import torch_load;"
            "from harness_ext.backends import CheckpointError\n"
            f"try:\n    torch_load(Path({str(legacy)!r}), 'x')\nexcept CheckpointError as e:\n    print('REFUSED', e)")
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0 and "REFUSED" in out.stdout, out.stderr[-2000:]
