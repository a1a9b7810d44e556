"""What a run is: the settings that shape its weights, recorded in its folder and checked on resume.

A checkpoint holds weights, optimizer moments and a step count, but not the config that made
them. Resuming a run with another LoRA rank, base model, data file or chat template would
either fail deep inside the trainer or, worse, go on and mix two experiments in one adapter.
So :func:`~ift_tutorial.training.trainer.train` writes ``run_config.json`` into the run folder
when a run starts (and into each ``checkpoint-N`` it saves, before its ``COMPLETE`` marker),
and a resume whose settings differ from the recorded ones is refused with the differences
named, ``lora.r: 16 -> 8``.

What is recorded (:func:`fingerprint`): every setting of the config except
:data:`MAY_CHANGE` (how long to train, how often to log and save, what to evaluate, how
many threads), plus a digest of the training file's content and of the chat template that
training formats the conversations with. A folder made before this record existed (no
``run_config.json``) resumes as before, unchecked.

Example:
    >>> from ift_tutorial.config import load_config
    >>> a = fingerprint(load_config("tiny"), chat_template="{{ messages }}")
    >>> a["lora.r"], a["model.name_or_path"], "training.max_steps" in a
    (16, 'data/tiny-llama', False)
    >>> b = fingerprint(load_config("tiny", ["lora.r=8", "training.max_steps=9"]), "{{ messages }}")
    >>> differences(a, b)
    ['lora.r: 16 -> 8']
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from . import distributed
from .checkpoints import find_resume_checkpoint, write_atomic
from ..config import ExperimentConfig
from ..errors import UserFacingError
from ..paths import SHIPPED_ROOT, display_path

FILE = "run_config.json"

#: Settings that may differ between a run and its resume (patterns over dotted keys): they do
#: not shape the weights, or only say where to find what is recorded under another key.
MAY_CHANGE = (
    "name", "description", "source",  # what the config is called, and which file it came from
    "model.load_from",  # a rehearsal's stand-in folder, made anew in each process
    "model.instruct_reference", "model.instruct_reference_load_from",  # evaluated beside it
    "model.trust_remote_code", "model.allow_pickle", "model.gated", "model.notes",
    "model.ledger_gpu",  # which GPU's memory a run is charged against (planning.ledger)
    "training.max_steps",  # train longer (the schedule is stretched to the new length)
    "training.save_steps", "training.save_total_limit", "training.logging_steps",
    "training.num_threads", "training.gradient_checkpointing",  # speed and memory, not the result
    "training.max_new_tokens", "training.eval_batch_size",  # evaluation
    "training.eval_steps", "training.eval_examples",  # validation: the random state is kept
    "data.eval_*", "data.max_eval_examples",
    "data.train.licence",
    "dpo", "grpo",  # the steps after SFT: their runs record their own settings
)
#: Keys whose values are local paths: files of the project are recorded relative to it
#: (``data/tasks/train.jsonl``), so a checkout moved elsewhere still matches.
PATH_KEYS = ("model.name_or_path", "model.chat_template", "data.train", "data.train.fixture")
TEMPLATE_KEY = "chat template (sha256)"
DATA_KEY = "data.train (sha256)"


class RunConfigMismatch(UserFacingError):
    """A resume whose weight-shaping settings differ from those recorded in the run."""


#: Mappings whose keys are recorded one by one: the config's sections, and a hub source.
_NESTED = ("model", "lora", "data", "training", "data.train")


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in d.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and name in _NESTED:
            out.update(_flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def _portable(value: Any) -> Any:
    """A local path as recorded: relative to the project for its own files, else absolute."""
    if not isinstance(value, str) or not os.path.isabs(value):
        return value
    p = Path(value).resolve()
    root = SHIPPED_ROOT.resolve()
    return p.relative_to(root).as_posix() if root in p.parents else p.as_posix()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def _file_digest(path: str) -> str | None:
    p = Path(path)
    if not p.is_file():
        return None
    digest = hashlib.sha256()
    with p.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def fingerprint(config: ExperimentConfig, chat_template: str | None) -> dict[str, Any]:
    """The settings of ``config`` that shape a run's weights, as ``{"lora.r": 16, ...}``.

    Args:
        config: the run's config.
        chat_template: the template training formats conversations with (the tokenizer's,
            or ``model.chat_template``'s file): its digest is recorded, so an edited
            template counts even under the same file name.

    Returns:
        Dotted keys (sorted) and JSON values; see :data:`MAY_CHANGE` for what is left out.
    """
    flat = _flatten(config.to_dict())
    out = {k: v for k, v in flat.items() if not any(fnmatch.fnmatchcase(k, p) for p in MAY_CHANGE)}
    for key in PATH_KEYS:
        if key in out:
            out[key] = _portable(out[key])
    if isinstance(config.data.train, str):
        digest = _file_digest(config.data.train)
        if digest is not None:
            out[DATA_KEY] = digest
    out[TEMPLATE_KEY] = _sha256(chat_template.encode("utf-8")) if chat_template else None
    return dict(sorted(out.items()))


def _show(value: Any) -> str:
    if isinstance(value, str):
        return display_path(value) if os.path.isabs(value) else value
    return json.dumps(value, ensure_ascii=False)


def differences(recorded: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """``key: old -> new`` for each key both hold with different values.

    A key only one side holds is not a difference: a setting added to the package after
    the run was recorded (or removed since) does not block its resume.
    """
    return [f"{key}: {_show(recorded[key])} -> {_show(current[key])}"
            for key in sorted(recorded.keys() & current.keys()) if recorded[key] != current[key]]


def read_record(folder: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The fingerprint recorded in ``folder`` (a run or a checkpoint), or None if it has none."""
    path = Path(folder) / FILE
    if not path.is_file():
        return None
    try:
        return dict(json.loads(path.read_text(encoding="utf-8"))["fingerprint"])
    except (ValueError, KeyError, TypeError):
        raise UserFacingError(f"{display_path(path)} is unreadable: delete it to resume this run "
                              "without checking its settings") from None


def write_record(folder: str | os.PathLike[str], fp: dict[str, Any]) -> Path:
    """Write ``folder/run_config.json`` (atomically) with the fingerprint ``fp``."""
    path = Path(folder) / FILE
    body = {"about": "what shaped this run's weights: `ift-tutorial train` refuses to resume it "
                     "with other values (ift_tutorial.training.run_config)",
            "fingerprint": fp}
    write_atomic(path, json.dumps(body, indent=1, ensure_ascii=False) + "\n")
    return path


def resume_target(output_dir: str | os.PathLike[str], resume: str) -> Path | None:
    """The checkpoint that ``resume`` would continue from (read only: nothing is set aside)."""
    if resume == "never":
        return None
    if resume == "auto":
        found = find_resume_checkpoint(output_dir).checkpoint
        return Path(found) if found else None
    return Path(resume)


def check_resume(output_dir: str | os.PathLike[str], resume: str, current: dict[str, Any]) -> None:
    """Refuse to resume a run recorded with other weight-shaping settings than ``current``.

    The record is the checkpoint's own ``run_config.json``, else its run folder's. Nothing
    is checked when nothing would be resumed, or when neither holds a record (a run made
    before records existed).

    Raises:
        RunConfigMismatch: naming each differing setting (``lora.r: 16 -> 8``) and how to
            start fresh instead.
    """
    checkpoint = resume_target(output_dir, resume)
    if checkpoint is None:
        return
    recorded = read_record(checkpoint)
    if recorded is None:
        recorded = read_record(checkpoint.parent)
    if recorded is None:
        return
    diffs = differences(recorded, current)
    if diffs:
        inside = checkpoint.resolve().parent == Path(output_dir).resolve()
        source = checkpoint.name if inside else display_path(checkpoint)
        raise RunConfigMismatch(
            f"cannot resume {display_path(output_dir)} from {source}: it was trained with "
            f"other settings ({'; '.join(diffs)}). Set them back to resume it, or start fresh: another "
            "--output-dir, or --resume never (resume='never' in Python), which trains from "
            f"step 0 in {display_path(output_dir)} and replaces its adapter/, metrics.json and "
            f"{FILE}; its old checkpoint-N folders stay until the new run's saves overwrite them "
            "or rotate them out (save_total_limit), and each says what made it: a later resume "
            "refuses a leftover one")


def start_record(output_dir: str | os.PathLike[str], resume: str, current: dict[str, Any]) -> None:
    """Check a resume against the record (every rank), then record ``current`` (rank 0)."""
    check_resume(output_dir, resume, current)
    distributed.barrier()  # every rank read the old record before rank 0 replaces it
    if distributed.is_main_process():
        write_record(output_dir, current)


class RecordInCheckpoints(TrainerCallback):
    """Write the run's record into each ``checkpoint-N`` (rank 0), before its ``COMPLETE`` marker.

    Goes before :class:`~ift_tutorial.training.checkpoints.CompleteMarkerCallback` in the
    trainer's callbacks, so that the marker lists the record with the checkpoint's files.
    A checkpoint left from an earlier run of other settings (``--resume never`` keeps them
    until they rotate out) then still says what made it.
    """

    def __init__(self, fp: dict[str, Any]):
        self.fp = fp

    def on_save(self, args, state, control, **kwargs):  # noqa: D102
        folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if distributed.is_main_process() and folder.is_dir():
            write_record(folder, self.fp)
