"""Pretraining the tiny preset: corpus, tokenizer and a small Llama, from scratch, on a CPU.

``ift-tutorial pretrain`` runs :func:`pretrain` with ``configs/pretrain-tiny.yaml``
and writes a standard ``transformers`` model folder (safetensors weights, config,
generation config, tokenizer with its chat template) to ``data/tiny-llama/``.

The loop is deliberately plain (no ``Trainer``): pack documents into rows of
``seq_len`` tokens, predict each next token, AdamW with warmup and cosine decay.
"""

from __future__ import annotations

import argparse
import functools
import inspect
import json
import math
import os
import random
import time
from pathlib import Path
from typing import Any

import torch
import yaml
from tqdm.auto import tqdm
from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from ..config import ConfigError, apply_overrides, find_config
from .corpus import World, make_corpus, make_world
from ..paths import TINY_MODEL_DIR, display_path, resolve_path
from ..training.progress import live_progress
from .preferences import build_preference_files, world_names
from .tasks import build_task_files
from .tokenizer import save_tokenizer, train_tokenizer


def load_pretrain_config(name_or_path: str = "pretrain-tiny",
                         overrides: list[str] | None = None) -> dict[str, Any]:
    """Read a pretraining YAML (a preset name or a path) and apply ``key.sub=value`` overrides."""
    path = find_config(name_or_path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: invalid YAML: {err}") from None
    # Folders named in the file are relative to it; those in overrides, to the working directory.
    for key in ("output_dir", "tasks_dir"):
        if isinstance(raw.get(key), str):
            raw[key] = str(resolve_path(raw[key], path.parent))
    raw = apply_overrides(raw, overrides)
    for section in ("world", "tokenizer", "model", "training"):
        if not isinstance(raw.get(section), dict):
            raise ConfigError(f"{path}: section '{section}' is missing or not a mapping")
    check_pretrain_config(raw, str(path))
    return raw


#: The keys of a pretraining config, and what each value must be: ``int`` (a whole number
#: of at least ``1``, or ``0`` where marked), a ``float`` (at least 0), ``bool``, or a folder.
_PRETRAIN_KEYS: dict[str | None, dict[str, tuple[type, int | None]]] = {
    None: {"seed": (int, 0), "output_dir": (str, None), "tasks_dir": (str, None),
           "tasks_heldout_per_kind": (int, 1)},
    "world": {"max_addend": (int, 0), "n_words": (int, 1), "n_people": (int, 1),
              "n_cities": (int, 1)},
    "tokenizer": {"vocab_size": (int, 1), "split_digits": (bool, None), "n_documents": (int, 1)},
    "training": {"seq_len": (int, 1), "batch_size": (int, 1), "max_steps": (int, 1),
                 "learning_rate": (float, None), "warmup_steps": (int, 0),
                 "min_lr_ratio": (float, None), "weight_decay": (float, None),
                 "max_grad_norm": (float, None), "num_threads": (int, 1), "log_every": (int, 1)},
}
#: transformers.LlamaConfig keys that the tokenizer sets, never the config.
_FROM_TOKENIZER = ("vocab_size", "bos_token_id", "eos_token_id", "pad_token_id")


def check_pretrain_config(raw: dict[str, Any], where: str) -> None:
    """Reject unknown keys and values of the wrong kind before pretraining starts (13 minutes
    later would be too late): a ConfigError naming the file, the section and the key."""
    sections = ("world", "tokenizer", "model", "training")
    for section, keys in _PRETRAIN_KEYS.items():
        values = raw if section is None else raw[section]
        known = set(keys) | (set(sections) if section is None else set())
        unknown = sorted(set(values) - known)
        if unknown:
            at = "the top level" if section is None else f"section '{section}'"
            raise ConfigError(f"{where}: {at}: unknown key(s) {unknown}; known keys: {sorted(known)}")
        for key, (kind, least) in keys.items():
            if values.get(key) is not None:
                _check_value(f"{section}.{key}" if section else key, values[key], kind, least, where)
    llama = LlamaConfig().to_dict()
    accepted = set(llama) | set(inspect.signature(LlamaConfig.__init__).parameters) - {"self", "kwargs"}
    for key, value in raw["model"].items():
        if key not in accepted or key in _FROM_TOKENIZER:
            why = "set from the tokenizer" if key in _FROM_TOKENIZER else "not a LlamaConfig key"
            raise ConfigError(f"{where}: section 'model': {key!r} is {why}")
        default = llama.get(key)
        if isinstance(default, int) and not isinstance(default, bool):
            _check_value(f"model.{key}", value, int, 1, where)


def _check_value(key: str, value: Any, kind: type, least: int | None, where: str) -> None:
    if kind is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: {key} must be a folder path, got {value!r}")
        return
    if kind is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: {key} must be true or false, got {value!r}")
        return
    if kind is float and isinstance(value, str):  # YAML reads 1e-3 (no dot) as text
        try:
            value = float(value)
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{where}: {key} must be a number, got {value!r}")
    if kind is int and value != int(value):
        raise ConfigError(f"{where}: {key} must be a whole number, got {value!r}")
    if value < (least or 0):
        raise ConfigError(f"{where}: {key} must be at least {least or 0}, got {value!r}")


def world_from_config(cfg: dict[str, Any]) -> World:
    """The made-up world a pretraining config describes."""
    return make_world(seed=cfg.get("seed", 0), **cfg["world"])


@functools.cache
def tiny_world_names(config: str = "pretrain-tiny") -> frozenset[str]:
    """The made-up words of the tiny preset's world (:func:`~.preferences.world_names`)."""
    return world_names(world_from_config(load_pretrain_config(config)))


def build_model(model_cfg: dict[str, Any], tokenizer: PreTrainedTokenizerFast, seed: int) -> LlamaForCausalLM:
    """A randomly initialised Llama whose vocabulary and special tokens match ``tokenizer``."""
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **model_cfg,
    )
    return LlamaForCausalLM(config)


def pack_documents(documents: list[str], tokenizer: PreTrainedTokenizerFast, seq_len: int) -> torch.Tensor:
    """Tokenise documents as ``<s> text </s>``, concatenate them and cut rows of ``seq_len``.

    Returns:
        LongTensor (n_rows, seq_len); the tail that does not fill a row is dropped.
    """
    ids: list[int] = []
    for row in tokenizer(documents, add_special_tokens=False)["input_ids"]:
        ids.append(tokenizer.bos_token_id)
        ids.extend(row)
        ids.append(tokenizer.eos_token_id)
    n_rows = len(ids) // seq_len
    return torch.tensor(ids[: n_rows * seq_len], dtype=torch.long).view(n_rows, seq_len)


def lr_at(step: int, peak: float, warmup: int, total: int, min_ratio: float) -> float:
    """Linear warmup to ``peak``, then cosine decay to ``min_ratio * peak``."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return peak * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def pretrain(cfg: dict[str, Any], output_dir: str | os.PathLike[str] | None = None,
             progress: bool | None = None) -> dict[str, Any]:
    """Generate the corpus, train the tokenizer, pretrain the model and save everything.

    Args:
        cfg: a pretraining config (see ``configs/pretrain-tiny.yaml``).
        output_dir: where to save; default ``cfg["output_dir"]``.
        progress: show a tqdm bar; default: when someone watches
            (:func:`ift_tutorial.training.progress.live_progress`).

    Returns:
        A summary: parameters, tokens seen, seconds, first and last loss, the folder.
    """
    seed = int(cfg.get("seed", 0))
    tcfg = cfg["training"]
    if tcfg.get("num_threads"):
        torch.set_num_threads(int(tcfg["num_threads"]))
    random.seed(seed)
    torch.manual_seed(seed)
    out = Path(output_dir or cfg.get("output_dir") or TINY_MODEL_DIR).expanduser().resolve()
    start = time.perf_counter()

    world = world_from_config(cfg)
    tok_docs = make_corpus(world, int(cfg["tokenizer"]["n_documents"]), seed=seed)
    tokenizer = train_tokenizer(tok_docs, vocab_size=int(cfg["tokenizer"]["vocab_size"]),
                                split_digits=bool(cfg["tokenizer"].get("split_digits", True)))

    seq_len, batch_size, max_steps = int(tcfg["seq_len"]), int(tcfg["batch_size"]), int(tcfg["max_steps"])
    needed = seq_len * batch_size * max_steps
    # Generate documents until the packed rows cover every step once (one epoch).
    avg = sum(len(x) + 2 for x in tokenizer(tok_docs[:1000], add_special_tokens=False)["input_ids"]) / 1000
    documents = make_corpus(world, int(needed / avg * 1.02) + 100, seed=seed + 1)
    rows = pack_documents(documents, tokenizer, seq_len)
    if len(rows) < batch_size * max_steps:
        rows = rows.repeat(math.ceil(batch_size * max_steps / len(rows)), 1)
    rows = rows[torch.randperm(len(rows), generator=torch.Generator().manual_seed(seed))]

    model = build_model(cfg["model"], tokenizer, seed)
    n_params = sum(p.numel() for p in model.parameters())
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": float(tcfg["weight_decay"])},
         {"params": no_decay, "weight_decay": 0.0}],
        lr=float(tcfg["learning_rate"]), betas=(0.9, 0.95),
    )
    log: list[dict[str, float]] = []
    model.train()
    progress = live_progress() if progress is None else progress
    bar = tqdm(range(max_steps), desc="pretraining", disable=not progress)
    for step in bar:
        lr = lr_at(step, float(tcfg["learning_rate"]), int(tcfg["warmup_steps"]), max_steps,
                   float(tcfg["min_lr_ratio"]))
        for group in optimizer.param_groups:
            group["lr"] = lr
        batch = rows[step * batch_size:(step + 1) * batch_size]  # (B, T)
        loss = model(input_ids=batch, labels=batch).loss  # labels are shifted inside the model
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), float(tcfg["max_grad_norm"]))
        optimizer.step()
        if step % int(tcfg["log_every"]) == 0 or step == max_steps - 1:
            log.append({"step": step + 1, "loss": round(loss.item(), 4), "lr": lr})
            bar.set_postfix(loss=f"{loss.item():.3f}")
    seconds = time.perf_counter() - start

    model.eval()
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, do_sample=False, max_new_tokens=32,
    )
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    save_tokenizer(tokenizer, out)
    summary = {
        "parameters": n_params,
        "tokens_seen": needed,
        "seconds": round(seconds, 1),
        "first_loss": log[0]["loss"],
        "last_loss": log[-1]["loss"],
    }
    # The log travels with the model (the book plots it); it holds no machine paths.
    portable = {k: v for k, v in cfg.items() if k not in ("output_dir", "tasks_dir")}
    (out / "pretrain_log.json").write_text(
        json.dumps({"config": portable, "summary": summary, "log": log}, indent=1, ensure_ascii=False),
        encoding="utf-8",
    )
    return {**summary, "output_dir": str(out)}


def pretrain_cli(args: argparse.Namespace) -> int:
    """``ift-tutorial pretrain``: args has ``config``, ``output_dir`` and ``overrides``.

    Also rewrites the task files, which ask about the same world: into ``tasks_dir``
    of the config, or into ``OUTPUT_DIR/tasks`` when ``--output-dir`` is given.
    """
    cfg = load_pretrain_config(args.config, args.overrides)
    summary = pretrain(cfg, args.output_dir)
    if cfg.get("tasks_dir"):
        # The task files ask about this world: rebuild them with it. A model saved
        # elsewhere gets its tasks beside it, leaving the shipped ones alone.
        tasks_dir = Path(args.output_dir) / "tasks" if args.output_dir else cfg["tasks_dir"]
        paths = build_task_files(world_from_config(cfg), tasks_dir,
                                 n_heldout=int(cfg.get("tasks_heldout_per_kind", 30)),
                                 seed=int(cfg.get("seed", 0)))
        summary["tasks"] = {name: display_path(p) for name, p in paths.items()}
        # Preference pairs about the same facts, beside the tasks (chapter 9).
        paths = build_preference_files(world_from_config(cfg), Path(tasks_dir).parent / "preferences",
                                       n_heldout=int(cfg.get("tasks_heldout_per_kind", 30)),
                                       seed=int(cfg.get("seed", 0)))
        summary["preferences"] = {name: display_path(p) for name, p in paths.items()}
    summary["output_dir"] = display_path(summary["output_dir"])
    print(json.dumps(summary, indent=2))
    return 0
