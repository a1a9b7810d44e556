"""Shipping a tuned model: merge, convert to GGUF, quantise, and write an Ollama Modelfile.

:func:`export_model` (``ift-tutorial export``) runs four steps:

1. **merge** the adapter into the base, shard by shard (:mod:`.merging`), and take HF's
   ``{% generation %}`` markers out of the chat template (a training-only extension that
   llama.cpp's and Ollama's template engines do not know; it renders nothing);
2. **convert** with llama.cpp's own converter (:mod:`.converter`) to an f16 (or f32) GGUF;
3. **quantise** (``q8_0``, ``q4_k_m``) with llama.cpp's ``llama_model_quantize`` through
   llama-cpp-python, the ``export`` extra;
4. write a **Modelfile** (:mod:`.modelfile`): the GGUF, a TEMPLATE that renders what the
   chat template renders, one ``PARAMETER stop`` per stop token, the context length.

Only quantising needs the compiled library; f16 and f32 need the converter alone.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..config import ExperimentConfig
from ..errors import UserFacingError
from ..formatting import size
from ..paths import display_path, resolve_path
from .converter import LLAMA_CPP_PYTHON, convert
from .gguf_checks import gguf_metadata, inference_template, read_gguf

#: The export's types: GGUF type -> bits per weight, roughly (for the disk check).
QUANTS = {"f32": 32.0, "f16": 16.0, "q8_0": 8.5, "q4_k_m": 4.9}
#: The quantisations done by llama.cpp's library (the others are the converter's).
QUANTISED = {"q8_0": "LLAMA_FTYPE_MOSTLY_Q8_0", "q4_k_m": "LLAMA_FTYPE_MOSTLY_Q4_K_M"}
#: Ollama allocates its KV cache for num_ctx tokens: a 128k context would not fit a laptop.
MAX_NUM_CTX = 8192
INSTALL_HINT = (f'pip install "ift-tutorial[export]" (builds llama-cpp-python=={LLAMA_CPP_PYTHON} '
                "from source with the machine's C++ compiler and cmake)")


class ExportError(UserFacingError):
    """The export cannot be done as asked; the message says what and how to fix it."""


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export_model` wrote."""

    gguf: Path  # the model file
    modelfile: Path  # Ollama's Modelfile, beside it
    quant: str
    bytes: int  # the GGUF file's size
    stops: tuple[str, ...]  # the stop tokens, as written into the Modelfile
    merged: Path | None  # the merged HF folder, when kept


def require_llama_cpp(why: str):
    """``llama_cpp``, or an :class:`ExportError` that says exactly what to install."""
    try:
        import llama_cpp
    except ImportError:
        raise ExportError(f"{why} needs llama-cpp-python, which is not installed: "
                          f"{INSTALL_HINT}") from None
    return llama_cpp


def check_quant(quant: str) -> str:
    """``quant`` if the export knows it, else a clear error."""
    if quant not in QUANTS:
        raise ExportError(f"--quant {quant}: unknown quantisation; choose f16, q8_0 or q4_k_m")
    return quant


def _check_output_dir(output_dir: Path, given: str) -> None:
    """``output_dir`` can be made: neither it nor a folder above it is a file (``given``: the
    path as the user wrote it, for the message)."""
    for folder in (output_dir, *output_dir.parents):
        if folder.exists():
            if not folder.is_dir():
                what = "it is" if folder == output_dir else f"{folder} is"
                raise ExportError(f"--output-dir {given}: {what} a file, not a folder")
            return


def _existing(path: Path) -> Path:
    while not path.exists():
        path = path.parent
    return path


def free_bytes(path: Path) -> int:
    """Free space on the disk that holds ``path`` (or its nearest existing parent)."""
    return shutil.disk_usage(_existing(path)).free


def base_weights(config: ExperimentConfig) -> tuple[int, int]:
    """``(parameters, bytes)`` of the base checkpoint, read from its safetensors headers."""
    from safetensors import safe_open

    from .merging import base_model_folder, shard_files

    base = base_model_folder(config.model)
    weight_map, _ = shard_files(base)
    params = stored = 0
    for shard in sorted(set(weight_map.values())):
        with safe_open(str(base / shard), framework="pt") as f:
            for name in f.keys():
                sl = f.get_slice(name)
                n = 1
                for d in sl.get_shape():
                    n *= d
                params += n
                stored += n * {"F32": 4, "F16": 2, "BF16": 2}.get(sl.get_dtype(), 4)
    return params, stored


def disk_needed(params: int, stored: int, quant: str) -> int:
    """Bytes the export needs at its peak: merged folder + the converter's GGUF, or that GGUF
    + the quantised one (the merged folder is removed before quantising)."""
    converted = params * (QUANTS["f32"] if quant == "f32" else QUANTS["f16"]) / 8
    final = params * QUANTS[quant] / 8
    peak = max(stored + converted, converted + final) if quant in QUANTISED else stored + converted
    return int(peak * 1.02) + 64 * 2**20  # headers, the tokenizer, some slack


def check_adapter(config: ExperimentConfig, adapter_dir: Path) -> None:
    """The adapter exists and its tokenizer fits the base's embedding (not another model's)."""
    from transformers import AutoConfig, AutoTokenizer

    from .merging import base_model_folder

    if not (adapter_dir / "adapter_config.json").is_file():
        raise ExportError(f"--adapter {display_path(adapter_dir)}: not a PEFT adapter folder "
                          "(no adapter_config.json)")
    if (adapter_dir / "tokenizer_config.json").is_file():
        vocab = len(AutoTokenizer.from_pretrained(adapter_dir))
        rows = AutoConfig.from_pretrained(base_model_folder(config.model)).vocab_size
        if vocab > rows:
            raise ExportError(f"--adapter {display_path(adapter_dir)}: its tokenizer has {vocab} "
                              f"tokens, the base model of --config {config.name} {rows}: an "
                              "adapter made for another base model")


def _strip_generation_markers(merged: Path):
    """Save the merged folder's tokenizer with the inference template; return the tokenizer."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(merged)
    if tokenizer.chat_template:
        tokenizer.chat_template = inference_template(tokenizer.chat_template)
        tokenizer.save_pretrained(merged)
    return tokenizer


def quantise(src: Path, dst: Path, quant: str) -> Path:
    """``src`` (f16 GGUF) quantised to ``quant`` by llama.cpp's ``llama_model_quantize``."""
    llama_cpp = require_llama_cpp(f"--quant {quant}")
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, QUANTISED[quant])
    from llama_cpp._utils import suppress_stdout_stderr

    with suppress_stdout_stderr(disable=False):  # llama.cpp's C log, a line per tensor
        status = llama_cpp.llama_model_quantize(str(src).encode(), str(dst).encode(), params)
    if status != 0 or not dst.is_file():
        raise ExportError(f"llama.cpp could not quantise {src.name} to {quant} (status {status})")
    return dst


def write_modelfile(gguf_file: Path, tokenizer) -> tuple[Path, tuple[str, ...]]:
    """The Modelfile beside ``gguf_file``, its TEMPLATE checked against the chat template."""
    from .generation import stop_token_ids
    from .modelfile import chat_wrappers, check_template, go_template, modelfile

    meta = gguf_metadata(read_gguf(gguf_file))
    wrappers = chat_wrappers(tokenizer)
    bos = tokenizer.bos_token or ""
    adds_bos = bool(meta.get("tokenizer.ggml.add_bos_token", False)) and bos
    drop = bos if adds_bos and wrappers.start.startswith(bos) else None
    template = go_template(wrappers, drop_bos=drop)
    check_template(tokenizer, template, bos=bos if drop else "")
    stops = tuple(tokenizer.convert_ids_to_tokens(stop_token_ids(tokenizer)))
    arch = meta["general.architecture"]
    n_ctx = min(int(meta.get(f"{arch}.context_length", MAX_NUM_CTX)), MAX_NUM_CTX)
    path = gguf_file.parent / "Modelfile"
    path.write_text(modelfile(gguf_file.name, template, list(stops), n_ctx,
                              system_supported=wrappers.start_system is not None), encoding="utf-8")
    return path, stops


def export_model(config: ExperimentConfig, adapter_dir: str | Path, output_dir: str | Path,
                 quant: str = "f16", keep_merged: bool = False) -> ExportResult:
    """Merge ``adapter_dir`` into its base and export ``<name>-<quant>.gguf`` and a Modelfile.

    Args:
        config: the preset the adapter was trained with (its base model).
        adapter_dir: a PEFT LoRA adapter folder (with the tuned tokenizer, as training saves it).
        output_dir: the folder for the GGUF file and the Modelfile (``merged/`` too, if kept).
        quant: ``f16``, ``q8_0`` or ``q4_k_m`` (``f32`` for checks: no rounding at all).
        keep_merged: keep the merged Hugging Face folder (the static checks compare with it).

    Raises:
        ExportError: an unknown ``quant``, no llama-cpp-python for quantising, an output folder
            that is a file, an adapter from another base, or too little free disk (it says
            how much the export needs).
    """
    from .merging import merge_adapter

    check_quant(quant)
    if quant in QUANTISED:
        require_llama_cpp(f"--quant {quant}")
    out, adapter = Path(output_dir).expanduser(), resolve_path(adapter_dir)
    _check_output_dir(out, str(output_dir))
    check_adapter(config, adapter)
    params, stored = base_weights(config)
    needed, free = disk_needed(params, stored, quant), free_bytes(out)
    if free < needed:
        raise ExportError(f"--output-dir {output_dir}: the export needs about {size(needed)} "
                          f"of free disk (merged model {size(stored)}, then the GGUF files), and "
                          f"{size(free)} is free; free some space or choose another folder")
    out.mkdir(parents=True, exist_ok=True)
    merged = merge_adapter(config, adapter, out / "merged")
    tokenizer = _strip_generation_markers(merged)
    stem = config.name
    first = convert(merged, out / f"{stem}-{'f32' if quant == 'f32' else 'f16'}.gguf",
                    "f32" if quant == "f32" else "f16")
    if not keep_merged:
        shutil.rmtree(merged)
    gguf_file = first
    if quant in QUANTISED:
        gguf_file = quantise(first, out / f"{stem}-{quant}.gguf", quant)
        first.unlink()
    modelfile, stops = write_modelfile(gguf_file, tokenizer)
    (out / "export.json").write_text(json.dumps(
        {"config": config.name, "quant": quant, "gguf": gguf_file.name,
         "bytes": gguf_file.stat().st_size, "stops": list(stops),
         "llama_cpp_python": LLAMA_CPP_PYTHON}, indent=2) + "\n", encoding="utf-8")
    return ExportResult(gguf_file, modelfile, quant, gguf_file.stat().st_size, stops,
                        merged if keep_merged else None)
