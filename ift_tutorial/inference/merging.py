"""Merging a LoRA adapter into its base model, and saving a standard model folder.

Merge into a *16-bit (or fp32) reload* of the base, never into the 4-bit weights:
adding ``B @ A`` to NF4 weights would require re-quantising the sum, which rounds
the update away and changes the model's outputs. The merged folder loads with a
plain ``AutoModelForCausalLM.from_pretrained`` and needs no peft at all.

Which 16-bit weights: the adapter was trained on top of NF4(W), the 4-bit base, so
``merge_into="original"`` (the default, as PEFT's ``merge_and_unload`` on a 16-bit reload)
gives ``W + s·BA``, which also takes away the quantisation error W - NF4(W) that training
saw; ``merge_into="nf4"`` gives ``NF4(W) + s·BA`` (W quantised and dequantised exactly as
bitsandbytes does when it loads the base, :func:`nf4_weight`): the very model that was
trained and evaluated, in 16 bits.

:func:`merge_adapter` (``ift-tutorial merge``) reads the base's safetensors shard by
shard on the CPU and adds ``scale * B @ A`` to the weights in each one, so a 7B model
merges on a machine with less memory than the model. :func:`load_merged` does the same
with PEFT's ``merge_and_unload`` on the whole model in memory, the reference it is
checked against.
"""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
from peft import PeftModel
from transformers import AutoTokenizer, GenerationConfig, PreTrainedModel

from ..config import ExperimentConfig, ModelSettings
from ..errors import UserFacingError
from .generation import save_generation_config
from ..planning.hardware import _DTYPES, detect_precision
from ..loading import (check_hub_access, check_local_weights, load_model, load_tokenizer,
                      resolve_model_path)
from ..paths import display_path, resolve_path


def merge_dtype(dtype: str = "auto") -> torch.dtype:
    """``auto``: the GPU's 16-bit compute dtype (bf16 or fp16), fp32 on a CPU.

    On a CPU the tiny preset is stored in fp32 and fp16 matmuls are slow, so the
    merge is exact in fp32 there.
    """
    if dtype == "auto":
        return detect_precision().compute_dtype
    if dtype not in _DTYPES:
        raise ValueError(f"dtype {dtype!r}: expected auto, bf16, fp16 or fp32")
    return _DTYPES[dtype]


def load_merged(config: ExperimentConfig, adapter_dir: str | Path, dtype: str = "auto") -> PreTrainedModel:
    """Reload the base unquantised, apply the adapter and fold ``(alpha/r) B A`` into W.

    PEFT's ``merge_and_unload`` on the whole model in memory: the reference the
    shard-wise :func:`merge_adapter` is checked against, for models that fit in RAM.
    """
    adapter_dir = resolve_path(adapter_dir)
    if not (adapter_dir / "adapter_config.json").is_file():
        raise FileNotFoundError(f"{adapter_dir}: not a PEFT adapter folder (no adapter_config.json)")
    base = load_model(config.model, load_in_4bit=False, dtype=merge_dtype(dtype))
    model = PeftModel.from_pretrained(base, str(adapter_dir))
    return model.merge_and_unload()


def merge_adapter(
    config: ExperimentConfig, adapter_dir: str | Path, output_dir: str | Path, dtype: str = "auto",
    merge_into: str = "original",
) -> Path:
    """Merge and save the model (safetensors) with its tokenizer to ``output_dir``.

    The merge goes shard by shard (:func:`merge_shardwise`), so its peak memory is one
    shard of the base, not the whole model. ``dtype="auto"`` keeps the base's stored
    dtype (fp32 for the tiny model, bf16 for Qwen2.5-7B); ``fp16``, ``bf16`` or ``fp32``
    convert. ``generation_config.json`` lists every stop token (EOS and the chat
    template's end of turn). ``merge_into``: ``"original"`` (W + s·BA) or ``"nf4"``
    (NF4(W) + s·BA, the model that training evaluated; see the module's docstring).

    Example:
        >>> from ift_tutorial import load_config, merge_adapter
        >>> folder = merge_adapter(load_config("tiny"), "data/adapters/tiny-sft", "runs/merged")
        >>> (folder / "config.json").is_file()
        True
    """
    adapter_dir = resolve_path(adapter_dir)
    if not (adapter_dir / "adapter_config.json").is_file():
        raise FileNotFoundError(f"{adapter_dir}: not a PEFT adapter folder (no adapter_config.json)")
    # Shard by shard on the CPU: a 7B model never has to fit in RAM or GPU memory.
    output_dir = merge_shardwise(base_model_folder(config.model), adapter_dir, output_dir,
                                 None if dtype == "auto" else merge_dtype(dtype),
                                 merge_into=_target(merge_into, config.model))
    has_tokenizer = (adapter_dir / "tokenizer_config.json").is_file()
    tokenizer = AutoTokenizer.from_pretrained(adapter_dir) if has_tokenizer else load_tokenizer(config.model)
    tokenizer.save_pretrained(output_dir)
    base_generation = (GenerationConfig.from_pretrained(output_dir)
                       if (output_dir / "generation_config.json").is_file() else None)
    save_generation_config(output_dir, tokenizer, base_generation)  # stops on EOS and end of turn
    return output_dir


# --- merging shard by shard: a 7B model on a machine with less RAM than the model ----------
#
# An fp16 reload of Qwen2.5-7B takes about 15 GB: more than a free Colab VM's RAM (about
# 12.7 GB) or a T4's memory (14.75 GiB). The merged weights W + s * B @ A depend on one
# layer's W, A and B only, so the merge can go one safetensors shard of the base at a
# time: read the shard, add the updates of the layers stored in it, write it out. Peak
# memory is about one shard (Qwen2.5-7B has four of about 4 GB).

INDEX_FILE = "model.safetensors.index.json"
SINGLE_FILE = "model.safetensors"
#: What the merge needs from a hub repository (safetensors only: pickles can run code).
BASE_FILES = ["*.safetensors", INDEX_FILE, "config.json", "generation_config.json"]


class MergeError(UserFacingError):
    """The adapter or the base model cannot be merged shard by shard; the message says why."""


@dataclass
class LoraUpdate:
    """The low-rank update of one base weight: ``W += scale * B @ A``."""

    A: torch.Tensor  # (r, in)
    B: torch.Tensor  # (out, r)
    scale: float  # alpha / r, or alpha / sqrt(r) with rsLoRA
    fan_in_fan_out: bool = False  # the base stores W transposed (GPT-2's Conv1D)

    def delta(self) -> torch.Tensor:
        """``scale * B @ A`` in fp32, shaped like the stored weight: (out, in), or (in, out)."""
        d = self.scale * (self.B.float() @ self.A.float())  # (out, in)
        return d.T if self.fan_in_fan_out else d


def lora_scale(alpha: float, r: int, use_rslora: bool = False) -> float:
    """PEFT's scaling of the update: ``alpha / r``, or ``alpha / sqrt(r)`` (rsLoRA).

    Example:
        >>> lora_scale(32, 16), lora_scale(32, 16, use_rslora=True)
        (2.0, 8.0)
    """
    return alpha / math.sqrt(r) if use_rslora else alpha / r


def read_adapter(adapter_dir: str | Path) -> tuple[dict[str, LoraUpdate], dict[str, torch.Tensor]]:
    """A PEFT LoRA adapter folder as updates keyed by the base weight they change.

    PEFT saves ``base_model.model.<module>.lora_A.weight`` (r, in) and ``...lora_B.weight``
    (out, r) for each adapted module; the base checkpoint calls that module's weight
    ``<module>.weight``. Modules in ``modules_to_save`` are saved whole
    (``base_model.model.<module>.weight``) and replace the base tensor.

    Returns:
        ``(updates, replacements)``: base weight name -> :class:`LoraUpdate`, and base
        tensor name -> the tensor that replaces it.

    Raises:
        MergeError: not a LoRA adapter, or a variant this merge does not do (DoRA,
            LoRA biases, embedding adapters), named with the file.
    """
    from peft.utils.other import get_pattern_key
    from safetensors.torch import load_file

    folder = Path(adapter_dir)
    cfg = json.loads((folder / "adapter_config.json").read_text(encoding="utf-8"))
    where = display_path(folder / "adapter_config.json")
    if cfg.get("peft_type") != "LORA":
        raise MergeError(f"{where}: peft_type {cfg.get('peft_type')!r}, expected LORA")
    if cfg.get("use_dora"):
        raise MergeError(f"{where}: DoRA adapters are not merged shard by shard; use load_merged")
    weights = folder / "adapter_model.safetensors"
    if not weights.is_file():
        raise MergeError(f"{display_path(folder)}: no adapter_model.safetensors")
    prefix = "base_model.model."
    pairs: dict[str, dict[str, torch.Tensor]] = {}
    replacements: dict[str, torch.Tensor] = {}
    for key, tensor in load_file(str(weights)).items():
        name = key[len(prefix):] if key.startswith(prefix) else key
        module, sep, part = name.rpartition(".lora_")
        if sep and part in ("A.weight", "B.weight"):
            pairs.setdefault(module, {})[part[0]] = tensor
        elif ".lora_" in name:
            raise MergeError(f"{display_path(weights)}: {key}: this LoRA variant is not supported "
                             "by the shard-wise merge (only lora_A/lora_B weights)")
        else:
            replacements[name] = tensor  # modules_to_save: the whole tuned module
    updates = {}
    for module, ab in sorted(pairs.items()):
        if set(ab) != {"A", "B"}:
            raise MergeError(f"{display_path(weights)}: {module} has lora_{''.join(ab)} only")
        alpha = cfg.get("alpha_pattern", {}).get(
            get_pattern_key(cfg.get("alpha_pattern", {}).keys(), module), cfg["lora_alpha"])
        r = ab["A"].shape[0]  # the rank as trained (rank_pattern included)
        updates[f"{module}.weight"] = LoraUpdate(ab["A"], ab["B"], lora_scale(alpha, r, cfg.get("use_rslora", False)),
                                                 bool(cfg.get("fan_in_fan_out", False)))
    return updates, replacements


def base_model_folder(settings: ModelSettings) -> Path:
    """The base model's local folder; for a hub id, its safetensors in the hub cache.

    A hub model is fetched with ``snapshot_download`` (safetensors, configs) only when
    this runs, that is when a reader merges a 7B adapter; a file already in the cache
    is not downloaded again.
    """
    path = resolve_model_path(settings)
    check_local_weights(path, settings.allow_pickle)
    if Path(path).is_dir():
        return Path(path)
    check_hub_access(settings, path)
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo_id=path, revision=settings.revision,
                                      allow_patterns=BASE_FILES))
    except Exception as err:  # offline, no such repo, no access: one clear line
        raise MergeError(f"cannot fetch the base model {path!r} for merging: {err}") from err


def shard_files(base: Path) -> tuple[dict[str, str], bool]:
    """Tensor name -> shard file of a safetensors checkpoint, and whether it has an index."""
    index = base / INDEX_FILE
    if index.is_file():
        return json.loads(index.read_text(encoding="utf-8"))["weight_map"], True
    if (base / SINGLE_FILE).is_file():
        from safetensors import safe_open

        with safe_open(str(base / SINGLE_FILE), framework="pt") as f:
            return {k: SINGLE_FILE for k in f.keys()}, False
    raise MergeError(f"{display_path(base)}: no {SINGLE_FILE} or {INDEX_FILE} (the merge reads "
                     "safetensors only)")


#: What a merge can add the update to: the base's weights as stored, or NF4(W).
MERGE_TARGETS = ("original", "nf4")


def _target(merge_into: str, settings: ModelSettings) -> str | bool:
    """``merge_into`` checked: "original", or the double-quantisation flag of an NF4 merge."""
    if merge_into not in MERGE_TARGETS:
        raise MergeError(f"merge_into {merge_into!r}: expected one of {', '.join(MERGE_TARGETS)}")
    if merge_into == "nf4" and settings.quant_type != "nf4":
        raise MergeError(f"merge_into 'nf4', but the base was quantised to {settings.quant_type!r} "
                         "(model.quant_type)")
    return "original" if merge_into == "original" else f"nf4{'+dq' if settings.double_quant else ''}"


def nf4_weight(w: torch.Tensor, double_quant: bool = True) -> torch.Tensor:
    """NF4(W): ``w`` (out, in) quantised as bitsandbytes does when it loads a 4-bit base
    (blocks of 64, NF4, absmax quantised too with ``double_quant``), dequantised to fp32.

    Bit for bit the weight a loaded ``Linear4bit`` dequantises (tests/inference/test_merging).
    """
    import bitsandbytes.functional as bnbF

    packed, state = bnbF.quantize_4bit(w, blocksize=64, compress_statistics=double_quant,
                                       quant_type="nf4")
    return bnbF.dequantize_4bit(packed, state).float()


def merge_shard(
    shard: Path, updates: dict[str, LoraUpdate], replacements: dict[str, torch.Tensor],
    dtype: torch.dtype | None = None, merge_into: str = "original",
) -> dict[str, torch.Tensor]:
    """One shard's tensors, merged: ``W + scale * B @ A`` where an update targets ``W``.

    The sum is formed in fp32 and rounded once to the stored dtype (or ``dtype``). With
    ``merge_into="nf4"`` (or ``"nf4+dq"``: double quantisation) ``W`` is :func:`nf4_weight`.
    """
    from safetensors import safe_open

    out: dict[str, torch.Tensor] = {}
    with safe_open(str(shard), framework="pt", device="cpu") as f:
        for name in f.keys():
            t = replacements[name] if name in replacements else f.get_tensor(name)
            target = dtype if (dtype is not None and t.is_floating_point()) else t.dtype
            if name in updates:
                w = nf4_weight(t, merge_into == "nf4+dq") if merge_into != "original" else t
                t = w.float() + updates[name].delta()
            out[name] = t.to(target).contiguous()
    return out


def _shape_mismatches(base: Path, weight_map: dict[str, str], updates: dict[str, LoraUpdate],
                      replacements: dict[str, torch.Tensor]) -> list[str]:
    """``"name: base (out, in), adapter (out, in)"`` for each adapted weight whose shape is not
    the base's (an adapter trained on another model), read from the headers only."""
    from safetensors import safe_open

    wanted: dict[str, tuple[int, ...]] = {name: tuple(t.shape) for name, t in replacements.items()}
    for name, u in updates.items():
        shape = (u.B.shape[0], u.A.shape[1])
        wanted[name] = shape[::-1] if u.fan_in_fan_out else shape
    wrong = []
    for shard in sorted({weight_map[name] for name in wanted}):
        with safe_open(str(base / shard), framework="pt", device="cpu") as f:
            for name in sorted(n for n in wanted if weight_map[n] == shard):
                stored = tuple(f.get_slice(name).get_shape())
                if stored != wanted[name]:
                    wrong.append(f"{name}: base {stored}, adapter {wanted[name]}")
    return wrong


def merge_shardwise(
    base: str | Path, adapter_dir: str | Path, output_dir: str | Path,
    dtype: torch.dtype | None = None, merge_into: str = "original",
) -> Path:
    """Merge a LoRA adapter into a safetensors checkpoint one shard at a time, on the CPU.

    Args:
        base: the base model's folder (``config.json`` and ``model.safetensors`` or
            ``model-0000N-of-0000M.safetensors`` with their index).
        adapter_dir: a PEFT LoRA adapter folder.
        output_dir: the merged model's folder, with the base's shard layout and index;
            a local disk is best (a 7B model is about 15 GB in 16 bits).
        dtype: the merged weights' dtype; None keeps each tensor's stored dtype.
        merge_into: ``"original"`` (W), ``"nf4"`` or ``"nf4+dq"`` (NF4(W), without or with
            double quantisation: as the 4-bit base was loaded).

    Returns:
        ``output_dir``. Its weights, config and generation config; the tokenizer is
        the caller's (see :func:`merge_adapter`).

    Raises:
        MergeError: an adapter weight has no base weight to go to (nothing is dropped).

    Example:
        >>> merge_shardwise("data/tiny-llama", "data/adapters/tiny-sft", "runs/merged")  # doctest: +SKIP
    """
    from safetensors.torch import save_file

    base, output_dir = Path(base), Path(output_dir)
    weight_map, indexed = shard_files(base)
    updates, replacements = read_adapter(adapter_dir)
    missing = sorted((set(updates) | set(replacements)) - set(weight_map))
    if missing:
        raise MergeError(f"{display_path(adapter_dir)}: {len(missing)} adapted weight(s) not in "
                         f"the base checkpoint {display_path(base)}, e.g. {missing[:3]}")
    wrong = _shape_mismatches(base, weight_map, updates, replacements)
    if wrong:
        raise MergeError(f"{display_path(adapter_dir)}: made for another base model: {len(wrong)} "
                         f"adapted weight(s) do not fit the shapes in {display_path(base)}, "
                         f"e.g. {wrong[0]}")
    output_dir.mkdir(parents=True, exist_ok=True)
    total = 0
    for shard in sorted(set(weight_map.values())):
        tensors = merge_shard(base / shard, updates, replacements, dtype, merge_into)
        total += sum(t.numel() * t.element_size() for t in tensors.values())
        save_file(tensors, str(output_dir / shard), metadata={"format": "pt"})
        del tensors  # one shard in memory at a time
    if indexed:
        index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
        (output_dir / INDEX_FILE).write_text(json.dumps(index, indent=2) + "\n", encoding="utf-8")
    config = json.loads((base / "config.json").read_text(encoding="utf-8"))
    if dtype is not None:
        config["dtype"] = str(dtype).replace("torch.", "")
    (output_dir / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    if (base / "generation_config.json").is_file():
        shutil.copyfile(base / "generation_config.json", output_dir / "generation_config.json")
    return output_dir


# --- checking a merge tensor by tensor: what fits where two 16-bit 7B models do not -------


def _tensor(folder: Path, weight_map: dict[str, str], name: str) -> torch.Tensor:
    from safetensors import safe_open

    with safe_open(str(folder / weight_map[name]), framework="pt", device="cpu") as f:
        return f.get_tensor(name)


def adapted_weight(config: ExperimentConfig, adapter_dir: str | Path,
                   name: str | None = None) -> tuple[str, torch.Tensor, torch.Tensor]:
    """One adapted base weight and its update, read from the files (no model is loaded).

    Returns:
        ``(name, W, update)``: the weight's name (the first adapted one unless ``name``),
        ``W`` (out, in) in fp32 as the base stores it, and ``update = scale * B @ A``.
    """
    updates, _ = read_adapter(resolve_path(adapter_dir))
    name = name or sorted(updates)[0]
    base = base_model_folder(config.model)
    weight_map, _ = shard_files(base)
    return name, _tensor(base, weight_map, name).float(), updates[name].delta()


def check_merged_tensors(config: ExperimentConfig, adapter_dir: str | Path, merged_dir: str | Path,
                         limit: int | None = None, merge_into: str = "original") -> float:
    """The largest difference between the merged folder's adapted tensors and ``W + s·BA``.

    Each adapted tensor is read from the base, the adapter and the merged folder one at a
    time, so this checks a 7B merge on a machine that cannot hold two 16-bit copies of the
    model (a free Colab VM). ``limit`` checks only the first that many, in name order;
    ``merge_into="nf4"`` checks against ``NF4(W) + s·BA``.

    Raises:
        MergeError: a merged tensor differs from ``W + s·BA`` by more than the rounding of
            its dtype allows (named, with the difference).
    """
    updates, _ = read_adapter(resolve_path(adapter_dir))
    target = _target(merge_into, config.model)
    base, merged = base_model_folder(config.model), Path(merged_dir)
    base_map, _ = shard_files(base)
    merged_map, _ = shard_files(merged)
    worst = 0.0
    for name in sorted(updates)[:limit]:
        got = _tensor(merged, merged_map, name)
        w = _tensor(base, base_map, name)
        w = nf4_weight(w, target == "nf4+dq") if target != "original" else w.float()
        expected = (w + updates[name].delta()).to(got.dtype)
        diff = (got.float() - expected.float()).abs().max().item()
        allowed = torch.finfo(got.dtype).eps * max(1.0, expected.float().abs().max().item())
        if diff > allowed:
            raise MergeError(f"{display_path(merged)}: {name} differs from W + s*B@A by {diff:.2e} "
                             f"(allowed {allowed:.1e})")
        worst = max(worst, diff)
    return worst
