"""Curated printouts: what matters in a config, a run folder, a function or a token list.

A page that prints ``bnb.to_dict()`` shows twenty keys, most of them defaults; a run
folder listed file by file shows forty rows of optimizer states and lock files. These
helpers show the few lines a reader needs, as the book's tables
(:mod:`ift_tutorial.book.tables`), with labels in the edition's language.
"""

from __future__ import annotations

import dataclasses
import enum
import html
import inspect
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..formatting import count
from ..i18n import t
from .plots import display_token
from .tables import NOT_MEASURED, Table, key_value_table, label, table

#: The settings shown for each kind of config (by class name), in order.
CONFIG_KEYS: dict[str, tuple[str, ...]] = {
    "BitsAndBytesConfig": ("load_in_4bit", "bnb_4bit_quant_type", "bnb_4bit_use_double_quant",
                           "bnb_4bit_compute_dtype", "bnb_4bit_quant_storage"),
    "LoraConfig": ("r", "lora_alpha", "lora_dropout", "target_modules", "use_rslora", "bias",
                   "task_type"),
    "Precision": ("device", "compute_dtype", "bf16", "fp16", "optim"),
    "SFTConfig": ("max_steps", "per_device_train_batch_size", "gradient_accumulation_steps",
                  "learning_rate", "lr_scheduler_type", "warmup_steps", "optim", "bf16", "fp16",
                  "max_grad_norm", "assistant_only_loss", "max_length", "packing", "save_steps",
                  "save_total_limit", "logging_steps", "seed"),
}

#: Plain-words labels of config keys (English; :func:`~ift_tutorial.i18n.t` translates them).
LABELS: dict[str, str] = {
    "load_in_4bit": "load the weights in 4 bits",
    "bnb_4bit_quant_type": "4-bit data type",
    "bnb_4bit_use_double_quant": "double quantisation",
    "bnb_4bit_compute_dtype": "compute dtype",
    "bnb_4bit_quant_storage": "storage dtype",
    "peft_type": "adapter type",
    "r": "rank r",
    "lora_alpha": "alpha",
    "lora_dropout": "dropout",
    "target_modules": "adapted layers",
    "use_rslora": "rank-stabilised scaling",
    "bias": "biases trained",
    "task_type": "task",
    "device": "device",
    "compute_dtype": "compute dtype",
    "bf16": "bf16 mixed precision",
    "fp16": "fp16 mixed precision",
    "optim": "optimizer",
    "max_steps": "optimizer steps",
    "per_device_train_batch_size": "batch size per device",
    "gradient_accumulation_steps": "gradient accumulation",
    "learning_rate": "learning rate",
    "lr_scheduler_type": "learning-rate schedule",
    "warmup_steps": "warm-up (steps, or a share below 1)",
    "assistant_only_loss": "loss on the answers only",
    "max_length": "max tokens per example",
    "packing": "packing",
    "max_grad_norm": "gradient clipping (max norm)",
    "save_steps": "checkpoint every (steps)",
    "save_total_limit": "checkpoints kept",
    "logging_steps": "log every (steps)",
    "seed": "seed",
    "greedy": "greedy decoding",
    "stop_tokens": "stop tokens",
    "max_new_tokens": "new tokens at most",
    "batch_size": "batch size",
    "n_exact_match": "exact-match questions",
    "n_ifeval": "IFEval prompts",
    "n_gsm8k": "GSM8K problems",
    "n_perplexity": "perplexity conversations",
}


def readable(value: Any) -> str:
    """A config value as a reader says it: ``float16`` not ``torch.float16``, ``cosine``
    not ``SchedulerType.COSINE``, ``yes``/``no`` (translated), lists joined.

    Example:
        >>> import torch
        >>> readable(torch.float16), readable(True), readable({"q_proj", "k_proj"}), readable(2e-4)
        ('float16', 'yes', 'k_proj, q_proj', '0.0002')
    """
    if value is None:
        return label(NOT_MEASURED)
    if isinstance(value, bool):
        return t("yes") if value else t("no")
    if isinstance(value, Mapping):  # {"exact_match": 16, "ifeval": 24} -> "exact_match 16, ..."
        return ", ".join(f"{k} {readable(v)}" for k, v in value.items())
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, (set, frozenset)):
        return readable(sorted(map(str, value)))
    if isinstance(value, (list, tuple)):
        if all(isinstance(v, str) for v in value):  # module paths: the layer names only
            value = dict.fromkeys(v.rsplit(".", 1)[-1] for v in value)
        return ", ".join(map(str, value))
    if isinstance(value, float):
        return f"{value:g}"
    text = str(value)
    return text.removeprefix("torch.")


def config_values(obj: Any) -> dict[str, Any]:
    """Every setting of a config object: a dataclass, a ``to_dict()`` config, a mapping."""
    if isinstance(obj, Mapping):
        return dict(obj)
    if hasattr(obj, "to_dict"):  # first: BitsAndBytesConfig is a dataclass of one field
        values = obj.to_dict()
        # to_dict() writes dtypes as strings; the attributes keep them
        return {k: getattr(obj, k, v) for k, v in values.items()}
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    return dict(vars(obj))


def show_config(obj: Any, keys: Sequence[str] | None = None,
                caption: str | None = None) -> Table:
    """A config as a short two-column table of what matters, labels in the edition's words.

    Args:
        obj: a ``BitsAndBytesConfig``, ``LoraConfig``, ``SFTConfig``, a
            :class:`~ift_tutorial.planning.hardware.Precision`, a section of an
            :class:`~ift_tutorial.config.ExperimentConfig` (``config.lora``), or a dict.
        keys: the settings to show, in order; by default those of :data:`CONFIG_KEYS` for
            its class, or every setting of a small dataclass or dict.

    Raises:
        KeyError: a key of ``keys`` is not a setting of ``obj`` (the message lists them).

    Example:
        >>> from peft import LoraConfig
        >>> print(repr(show_config(LoraConfig(r=8, lora_alpha=16), keys=["r", "lora_alpha"])))
        setting value
         rank r     8
          alpha    16
    """
    values = config_values(obj)
    keys = list(keys or CONFIG_KEYS.get(type(obj).__name__, values))
    unknown = [k for k in keys if k not in values]
    if unknown:
        raise KeyError(f"{type(obj).__name__} has no setting {', '.join(unknown)}; "
                       f"it has {', '.join(sorted(values))}")
    return key_value_table({LABELS.get(k, k): readable(values[k]) for k in keys},
                           caption=caption)


#: What each part of a run folder is (:func:`ift_tutorial.training.trainer.train`).
RUN_FOLDER_PARTS: dict[str, str] = {
    "adapter": "the trained LoRA adapter (safetensors) and its tokenizer",
    "checkpoints": "checkpoints to resume from: adapter, optimizer, scheduler, random states",
    "metrics.json": "scores before and after, timings, parameter counts, versions",
    "log.json": "the trainer's log: loss and learning rate per logged step",
    "loss.png": "the loss curve",
    "run_config.json": "the settings that shape the weights (a resume must match them)",
    "predictions.jsonl": "held-out answers before and after, one line per question",
    "ifeval_answers.jsonl": "IFEval answers before and after",
    "gsm8k_answers.jsonl": "GSM8K answers before and after",
    "README.md": "the model card the trainer writes",
}


def _folder_size(path: Path) -> tuple[int, int]:
    files = [p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")]
    return len(files), sum(p.stat().st_size for p in files)


def run_folder_rows(path: str | Path) -> list[dict[str, Any]]:
    """One row per part of a run folder: ``part``, ``holds``, ``files``, ``size``.

    Checkpoint folders are one row (their steps listed); hidden files (``.lock``) are
    left out.
    """
    folder = Path(path)
    rows, checkpoints = [], []
    for child in sorted(folder.iterdir()):
        if child.name.startswith("."):  # the run lock, a store of finished runs
            continue
        if child.is_dir() and child.name.startswith("checkpoint-"):
            checkpoints.append(child)
            continue
        n, nbytes = _folder_size(child) if child.is_dir() else (1, child.stat().st_size)
        name = child.name + ("/" if child.is_dir() else "")
        rows.append({"part": name, "holds": label(RUN_FOLDER_PARTS.get(child.name, "")),
                     "files": n, "size": nbytes})
    if checkpoints:
        steps = sorted(int(c.name.split("-")[-1]) for c in checkpoints if
                       c.name.split("-")[-1].isdigit())
        sizes = [_folder_size(c) for c in checkpoints]
        rows.insert(1 if rows and rows[0]["part"] == "adapter/" else 0, {
            "part": "checkpoint-" + ", ".join(map(str, steps)) + "/",
            "holds": t(RUN_FOLDER_PARTS["checkpoints"]),
            "files": sum(n for n, _ in sizes), "size": sum(b for _, b in sizes)})
    return rows


def show_run_folder(path: str | Path) -> Table:
    """What a training run's folder holds, as a short table (no lock files, no digests).

    Example:
        >>> import tempfile, pathlib
        >>> run = pathlib.Path(tempfile.mkdtemp())
        >>> (run / "adapter").mkdir(); (run / "adapter" / "adapter_model.safetensors").write_bytes(b"0" * 2048)
        2048
        >>> (run / ".lock").touch(); (run / "metrics.json").write_text("{}")
        2
        >>> show_run_folder(run).column("part")
        ['adapter/', 'metrics.json']
    """
    return table(run_folder_rows(path),
                 columns={"part": "part", "holds": "what it holds", "files": "files",
                          "size": "size"},
                 styles={"files": "count", "size": "bytes"})


#: A run's answer files, in the order they are looked for: file -> (prompt, reference) keys.
ANSWER_FILES = {"predictions.jsonl": ("prompt", "reference"),
                "ifeval_answers.jsonl": ("prompt", "instruction_id_list"),
                "gsm8k_answers.jsonl": ("question", "target")}


def show_answers(path: str | Path, n: int = 8, width: int = 120) -> Table:
    """The first ``n`` held-out answers of a run, before and after tuning, side by side.

    Reads the first answer file the run has (:data:`ANSWER_FILES`: the tiny world's
    questions, else IFEval's prompts, else GSM8K's problems); long text is cut at
    ``width`` characters with "…".

    Raises:
        FileNotFoundError: the run folder has none of the answer files.
    """
    import json

    folder = Path(path)
    name = next((f for f in ANSWER_FILES if (folder / f).is_file()), None)
    if name is None:
        raise FileNotFoundError(f"{folder.name} has no answers ({', '.join(ANSWER_FILES)})")
    prompt, reference = ANSWER_FILES[name]

    def cut(value: Any) -> str:
        text = readable(value) if isinstance(value, (list, tuple)) else str(value)
        return text if len(text) <= width else text[:width - 1] + "…"

    with (folder / name).open(encoding="utf-8") as fh:
        rows = [json.loads(line) for _, line in zip(range(n), fh)]
    return table([{"prompt": cut(r.get(prompt)), "reference": cut(r.get(reference)),
                   "before": cut(r.get("before")), "after": cut(r.get("after"))} for r in rows],
                 columns={"prompt": "prompt", "reference": "reference",
                          "before": "answer before", "after": "answer after"})


class Html:
    """An HTML fragment for Jupyter, with a plain-text form for a terminal."""

    def __init__(self, html_text: str, text: str):
        self.html, self.text = html_text, text

    def _repr_html_(self) -> str:
        return self.html

    def __repr__(self) -> str:
        return self.text


#: Longest source shown whole; a longer one is pointed to (module, lines) with an excerpt.
MAX_SOURCE_LINES = 15


def _where(func: Callable) -> tuple[str, int, int]:
    """``(module, first line, last line)`` of ``func``'s source."""
    func = inspect.unwrap(func)
    lines, first = inspect.getsourcelines(func)
    return func.__module__, first, first + len(lines) - 1


def show_source(func: Callable, lines: tuple[int, int] | None = None,
                max_lines: int = MAX_SOURCE_LINES) -> Html:
    """A short piece of ``func``'s source, and where the rest is.

    Args:
        func: a function, method or class (the package's or a library's).
        lines: the lines of its source to show, 1-based and inclusive, counted from its
            ``def`` line (``(1, 12)``); by default the whole source if it has at most
            ``max_lines`` lines, else its first ``max_lines`` lines.

    Returns:
        The excerpt as code, with one line naming the module and its line numbers.

    Example:
        >>> from ift_tutorial.formatting import percent
        >>> print(repr(show_source(percent, lines=(1, 1))))
        def percent(fraction: float | None, digits: int = 0) -> str:
        # ift_tutorial.formatting, lines 28-37 (1 of 10 shown)
    """
    source = inspect.getsource(inspect.unwrap(func)).splitlines()
    module, first, last = _where(func)
    start, end = lines or (1, min(len(source), max_lines))
    if not 1 <= start <= end <= len(source):
        raise ValueError(f"lines {start}-{end} are outside the {len(source)} lines of "
                         f"{getattr(func, '__qualname__', func)}")
    shown = source[start - 1:end]
    note = f"# {module}, lines {first}-{last}"
    if len(shown) < len(source):
        note += f" ({len(shown)} of {len(source)} shown)"
    text = "\n".join(shown + [note])
    try:
        from IPython.display import Code

        body = Code(text, language="python")._repr_html_()
    except ImportError:  # no IPython: plain text only
        body = f"<pre>{html.escape(text)}</pre>"
    return Html(body, text)


def show_tokens(tokens: Sequence[str], ids: Sequence[int] | None = None,
                labels: Sequence[int] | None = None,
                rows: Mapping[str, Sequence[Any]] | None = None, per_line: int = 10) -> Html:
    """Tokens and what belongs to each (ids, labels), wrapped onto lines of ``per_line``.

    Args:
        tokens: each token's text (spaces shown as ␣, newlines as ⏎).
        ids: each token's id (a row "id").
        labels: each token's label for the loss, -100 or an id (a row "label").
        rows: more rows under the tokens, English name -> one value per token; names
            translated (add them to :data:`ift_tutorial.i18n.ZH`).

    Example:
        >>> out = show_tokens(["Hello", " world", "!"], ids=[9707, 1879, 0], per_line=2)
        >>> print(repr(out))
        position | 0     | 1
        token    | Hello | ␣world
        id       | 9707  | 1879
        <BLANKLINE>
        position | 2
        token    | !
        id       | 0
    """
    named = {"id": ids, "label": labels}
    rows = {**{k: v for k, v in named.items() if v is not None}, **(rows or {})}
    for name, values in rows.items():
        if len(values) != len(tokens):
            raise ValueError(f"{len(tokens)} tokens but {len(values)} values of {name!r}")
    blocks_html, blocks_text = [], []
    for start in range(0, len(tokens), per_line):
        stop = min(start + per_line, len(tokens))
        lines = [(t("position"), [str(i) for i in range(start, stop)]),
                 (t("token"), [display_token(tok) for tok in tokens[start:stop]])]
        lines += [(label(name), [str(v) for v in values[start:stop]])
                  for name, values in rows.items()]
        widths = [max(len(cells[i]) for _, cells in lines) for i in range(stop - start)]
        head = max(len(label) for label, _ in lines)
        blocks_text.append("\n".join(
            " | ".join([label.ljust(head)] + [c.ljust(w) for c, w in zip(cells, widths)]).rstrip()
            for label, cells in lines))
        body = "".join(
            f"<tr><th>{html.escape(label)}</th>"
            + "".join(f"<td><code>{html.escape(c)}</code></td>" for c in cells) + "</tr>"
            for label, cells in lines)
        blocks_html.append(f'<table style="margin-bottom:0.6em">{body}</table>')
    return Html("".join(blocks_html), "\n\n".join(blocks_text))


def parameter_line(trainable: int, total: int) -> str:
    """``trainable 2.2 M of 135 M parameters (1.6 %)``: a PEFT model's count, for people."""
    return t("trainable {trainable} of {total} parameters ({share})", trainable=count(trainable),
             total=count(total), share=f"{100 * trainable / total:.2g} %")


__all__ = ["show_config", "show_run_folder", "show_answers", "show_source", "show_tokens",
           "readable", "run_folder_rows", "parameter_line"]
