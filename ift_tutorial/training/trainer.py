"""QLoRA instruction tuning: TRL's ``SFTTrainer`` on a 4-bit base model with a LoRA adapter.

:func:`train` is what ``ift-tutorial train`` runs, for the tiny preset on a CPU and
for a 7B preset on a GPU alike:

1. load the base model in 4-bit NF4 and its tokenizer (:mod:`ift_tutorial.loading`);
2. evaluate the base model (exact match, IFEval, GSM8K, answer-token perplexity):
   the "before" numbers;
3. wrap it with a LoRA adapter and train on the assistant tokens only;
4. save the adapter (a standard PEFT folder), the log and the loss curve;
5. evaluate again: the "after" numbers, all written to ``metrics.json``.

Checkpoints are written every ``training.save_steps`` steps; running the same
command again resumes from the newest complete one. The settings that shape the weights
are recorded in ``run_config.json``, and a resume with other values is refused
(:mod:`ift_tutorial.training.run_config`).
"""

from __future__ import annotations

import json
import logging
import os
import resource
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import torch
from transformers import set_seed

from . import distributed, finished_runs
from .checkpoints import CompleteMarkerCallback, resolve_resume, train_resuming
from .guards import guards
from .run_config import RecordInCheckpoints, fingerprint, start_record
from . import validation
from ..config import ExperimentConfig
from ..errors import UserFacingError
from ..evaluation.runner import SUMMARY_KEYS, evaluate_model
from ..evaluation.statistics import intervals, paired_tests
from ..inference.generation import save_generation_config
from ..planning.hardware import Precision, detect_precision, trainable_dtype
from ..loading import load_model, load_tokenizer
from ..paths import display_path
from ..book.plots import plot_loss
from .progress import data_line, evaluation_line, replace_progress, training_line
from .runlock import RunLock, die_with_launcher
from .provenance import file_sha256, run_versions

logger = logging.getLogger(__name__)


def lora_config(config: ExperimentConfig):
    """The ``peft.LoraConfig`` of a config's ``lora`` section."""
    from peft import LoraConfig

    lc = config.lora
    return LoraConfig(
        r=lc.r,
        lora_alpha=lc.alpha,
        lora_dropout=lc.dropout,
        target_modules=lc.target_modules,
        use_rslora=lc.use_rslora,
        bias=lc.bias,
        task_type="CAUSAL_LM",
    )


def sft_config(config: ExperimentConfig, output_dir: str | os.PathLike[str], precision: Precision,
               validate: bool = False):
    """The ``trl.SFTConfig`` of a config's ``training`` section, for this machine's precision.

    ``bf16``/``fp16`` are always set explicitly: ``SFTConfig`` defaults to bf16, which on
    a CPU or a T4 would be slow or emulated. ``validate``: evaluate the validation loss
    every ``training.eval_steps`` steps (the trainer then needs an ``eval_dataset``).
    """
    from trl import SFTConfig

    t = config.training
    return SFTConfig(
        output_dir=str(output_dir),
        max_steps=t.max_steps,
        per_device_train_batch_size=t.per_device_train_batch_size,
        gradient_accumulation_steps=t.gradient_accumulation_steps,
        learning_rate=t.learning_rate,
        lr_scheduler_type=t.lr_scheduler_type,
        warmup_steps=t.warmup_ratio,  # a value below 1 is a fraction of max_steps
        weight_decay=t.weight_decay,
        max_grad_norm=t.max_grad_norm,
        optim=precision.optim,
        bf16=precision.bf16,
        fp16=precision.fp16,
        **_checkpointing_args(SFTConfig, t.gradient_checkpointing),
        # The loss goes on what the assistant says (EOS included), not on the prompt.
        assistant_only_loss=True,
        max_length=config.model.max_length,
        packing=False,
        save_strategy="steps",
        save_steps=t.save_steps,
        save_total_limit=t.save_total_limit,
        logging_steps=t.logging_steps,
        logging_first_step=True,
        # A nan or inf loss is logged as it is (the Trainer's filter would log 0.0 or the last
        # mean): ift_tutorial.training.guards stops the run on it.
        logging_nan_inf_filter=False,
        seed=t.seed,
        data_seed=t.seed,
        report_to="none",
        disable_tqdm=False,
        **distributed.trainer_kwargs(),
        **validation.validation_args(config, validate),  # the loss on held-out conversations
    )


def _checkpointing_args(args_cls: type, enabled: bool) -> dict[str, Any]:
    """Gradient (activation) checkpointing settings under the name this transformers uses.

    transformers 5 renamed ``gradient_checkpointing`` to ``activation_checkpointing``.
    Non-reentrant checkpointing works with frozen 4-bit layers without extra hooks.
    """
    import dataclasses

    names = {f.name for f in dataclasses.fields(args_cls)}
    key = "activation_checkpointing" if "activation_checkpointing" in names else "gradient_checkpointing"
    return {key: enabled, f"{key}_kwargs": {"use_reentrant": False} if enabled else None}


def fp32_adapter(model: torch.nn.Module, dtype: torch.dtype = torch.float32) -> int:
    """Cast trainable parameters to ``dtype`` (fp32 by default); returns how many changed.

    TRL casts LoRA weights to bf16 when the base model is quantised. That suits a bf16
    run only: an fp16 run (a T4) crashes at its first optimizer step (GradScaler cannot
    unscale bf16 gradients), and with fp32 compute (a CPU) the updates get coarser.
    :func:`build_trainer` applies :func:`ift_tutorial.planning.hardware.trainable_dtype`.
    """
    n = 0
    for p in model.parameters():
        if p.requires_grad and p.dtype != dtype:
            p.data = p.data.to(dtype)
            n += 1
    return n


def build_trainer(config: ExperimentConfig, model: torch.nn.Module, tokenizer: Any, dataset: Any,
                  args: Any, precision: Precision, callbacks: list | None = None,
                  eval_dataset: Any = None):
    """TRL's ``SFTTrainer`` with the config's LoRA adapter, its trainable weights in
    :func:`~ift_tutorial.planning.hardware.trainable_dtype` (fp32 unless the run is bf16).

    Example:
        >>> trainer = build_trainer(cfg, model, tok, dataset, sft_config(cfg, "out", p), p)  # doctest: +SKIP
    """
    from trl import SFTTrainer

    trainer = SFTTrainer(model=model, args=args, train_dataset=dataset, eval_dataset=eval_dataset,
                         processing_class=tokenizer,
                         peft_config=lora_config(config), callbacks=callbacks)
    fp32_adapter(trainer.model, trainable_dtype(precision))
    return trainer


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 1024  # bytes on macOS, KiB on Linux


#: The number of items of each evaluation set, in a report and in metrics.json.
COUNT_KEYS = ("n_exact_match", "n_ifeval", "n_gsm8k", "n_perplexity", "n_mc", "n_refusal")


def _eval_summary(report: dict[str, Any], when: str) -> dict[str, Any]:
    # each accuracy with its 95 % interval, from the suite's per-item outcomes
    return {f"{key}_{when}": report.get(key) for key in SUMMARY_KEYS} | intervals(report, when)


def _write_predictions(out: Path, before: dict[str, Any], after: dict[str, Any]) -> None:
    """Answers before and after, side by side, one JSON line per held-out example.

    ``predictions.jsonl`` (exact match: prompt, reference), ``ifeval_answers.jsonl``
    (set, key, prompt, followed or not) and ``gsm8k_answers.jsonl`` (question, target,
    extracted numbers), for the sets that were measured.
    """
    files = {
        "predictions.jsonl": ("predictions", ("task", "lang", "prompt", "reference"),
                              ("prediction", "correct")),
        "ifeval_answers.jsonl": ("ifeval_results", ("set", "key", "lang", "prompt",
                                                    "instruction_id_list"),
                                 ("response", "follow_all_instructions",
                                  "follow_all_instructions_loose", "follow_instruction_list",
                                  "follow_instruction_list_loose")),
        "gsm8k_answers.jsonl": ("gsm8k_results", ("lang", "question", "target"),
                                ("response", "flexible", "strict", "flexible_correct",
                                 "strict_correct")),
    }
    for name, (key, shared, each) in files.items():
        b, a = before.get(key) or [], after.get(key) or []
        if not b or not a:
            continue
        with (out / name).open("w", encoding="utf-8") as fh:
            for rb, ra in zip(b, a):
                row = {k: rb.get(k) for k in shared}
                for k in each:
                    name_ = "before" if k in ("prediction", "response") else f"{k}_before"
                    row[name_] = rb.get(k)
                    row[name_.replace("before", "after")] = ra.get(k)
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")


def parameter_counts(model: torch.nn.Module) -> dict[str, int]:
    """Base and adapter parameters of a (4-bit) PEFT model, each weight counted once.

    A 4-bit weight is stored packed, two values per byte, so ``numel()`` of its storage
    is half the weights; its quantisation state keeps the real shape. LoRA weights
    (``lora_`` in the name) are the adapter; everything else is the base.

    Returns:
        ``base_parameters``, ``adapter_parameters``, ``trainable_parameters`` and
        ``total_parameters`` (base + adapter).
    """
    import math

    base = adapter = trainable = 0
    for name, p in model.named_parameters():
        state = getattr(p, "quant_state", None)
        n = math.prod(state.shape) if state is not None else p.numel()
        if "lora_" in name:
            adapter += n
        else:
            base += n
        trainable += n if p.requires_grad else 0
    return {"base_parameters": base, "adapter_parameters": adapter,
            "trainable_parameters": trainable, "total_parameters": base + adapter}


def train(
    config: ExperimentConfig,
    output_dir: str | os.PathLike[str],
    resume: str = "auto",
    evaluate: bool = True,
    fresh: bool = False,
) -> dict[str, Any]:
    """QLoRA-tune ``config``'s base model on its instruction data.

    Args:
        config: the experiment (model, lora, data, training sections).
        output_dir: where checkpoints (``checkpoint-N/``), the adapter (``adapter/``),
            ``log.json``, ``loss.png``, ``metrics.json`` and ``run_config.json`` go.
        resume: "auto" (newest complete checkpoint in ``output_dir``, if any), "never"
            (step 0, in the same folder: old checkpoints stay until rotated out), or a
            checkpoint folder.
        evaluate: measure the config's held-out sets before and after tuning (exact
            match, IFEval, GSM8K, answer-token perplexity; :func:`evaluate_model`).
        fresh: empty ``output_dir`` first and train from step 0. A finished fresh run
            is kept under ``<runs>/.finished`` and, with ``IFT_REUSE_RUNS=1``, a later
            fresh run of the same config and code is copied from there instead of
            trained again (:mod:`ift_tutorial.training.finished_runs`; the Chinese book build).

    Returns:
        The metrics (also written to ``output_dir/metrics.json``).

    Raises:
        RunConfigMismatch: the checkpoint to resume was trained with other weight-shaping
            settings (:mod:`~ift_tutorial.training.run_config`); the message names them.
        RunFolderBusy: another live run holds ``output_dir`` (its PID is in the message).
            The lock (``output_dir/.lock``) is released when this call returns or fails,
            and by the kernel if the process dies.

    Example:
        >>> from ift_tutorial.config import load_config
        >>> from ift_tutorial.training.trainer import train
        >>> cfg = load_config("tiny", ["training.max_steps=3"])
        >>> metrics = train(cfg, "runs/demo", evaluate=False)  # doctest: +SKIP
    """
    die_with_launcher()  # under torchrun: this rank dies with its launcher, even by SIGKILL
    with RunLock(output_dir) as lock:  # one live run per folder
        try:
            if not fresh:
                return _train(config, output_dir, resume, evaluate, lock)
            return _train_fresh(config, Path(output_dir), evaluate, lock)
        except BaseException as err:
            # A failed run (CUDA out of memory on a T4) must not keep the 4-bit model and
            # the trainer alive through its traceback, which a notebook keeps
            # (sys.last_traceback): without their frames' variables they can be freed.
            _clear_frames(err)
            raise


def _train_fresh(config: ExperimentConfig, out: Path, evaluate: bool, lock: RunLock) -> dict[str, Any]:
    """A run from step 0 in an emptied folder, or the copy of an identical finished one."""
    if distributed.world_size() > 1:
        raise UserFacingError("train(fresh=True) is for one process: under a launcher, "
                              "start from an empty --output-dir instead")
    reused = finished_runs.reuse_finished(config, evaluate, out)
    if reused is not None:
        return reused
    finished_runs.empty_folder(out)
    metrics = _train(config, out, "never", evaluate, lock)
    if finished_runs.worth_keeping(config):
        finished_runs.keep_finished(config, evaluate, out)
    return metrics


def _clear_frames(err: BaseException) -> None:
    """Drop the local variables of the finished frames in ``err``'s traceback (and its causes)."""
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        traceback.clear_frames(err.__traceback__)
        err = err.__cause__ or err.__context__


def _train(
    config: ExperimentConfig,
    output_dir: str | os.PathLike[str],
    resume: str,
    evaluate: bool,
    lock: RunLock,
) -> dict[str, Any]:
    """The body of :func:`train`, run while ``lock`` is held."""
    from ..instructions.contamination import data_checks
    from ..instructions.dataset import prepare_dataset

    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    t = config.training
    if t.num_threads:
        # a budget for the machine: ranks launched together on it share the threads
        torch.set_num_threads(distributed.threads_per_rank(t.num_threads))
    set_seed(t.seed)
    precision = detect_precision(config.model.compute_dtype, t.optim)
    start = time.perf_counter()
    # (also forms the process group under a launcher)
    args = sft_config(config, out, precision, validate=validation.validation_enabled(config))
    lock.share_verdict()  # every rank hears rank 0's verdict before anything is written

    tokenizer = load_tokenizer(config.model)
    # What shapes the weights, recorded in the folder; a resume with other values is refused
    # here, before the model loads (run_config.json; ift_tutorial.training.run_config).
    recorded = fingerprint(config, tokenizer.chat_template)
    start_record(out, resume, recorded)
    model = load_model(config.model)  # 4-bit NF4; CPU repacking disabled (see loading.py)
    dataset, data_report = prepare_dataset(
        config.data.train, tokenizer, max_length=config.model.max_length,
        deduplicate=config.data.deduplicate, split=config.data.train_split,
        system_prompt=config.data.system_prompt, strict=False, checks=data_checks(config),
    )
    # One line per phase, written from the metrics: a copied run prints the same lines.
    metrics: dict[str, Any] = {"config": config.name, **config.marker(),
                               "train_read": data_report.n_read, "train_examples": len(dataset),
                               "data_filtered": data_report.filtered,
                               "data_overlap": data_report.overlap_counts(),
                               "max_length": config.model.max_length}
    print(data_line(metrics), flush=True)
    before: dict[str, Any] = {}
    if evaluate:
        # The base model, exactly as training will start from it.
        before = evaluate_model(model, tokenizer, config)
        metrics.update(_eval_summary(before, "before"), skipped=before.get("skipped", []),
                       **{n: before.get(n) for n in COUNT_KEYS})
        print(evaluation_line(metrics, "before"), flush=True)

    held_out = validation.validation_set(config)  # None unless training.eval_steps is set
    choice = resolve_resume(out, resume)  # after the process group, so ranks agree (barriers)
    sync = distributed.RankSyncCallback()
    trainer = build_trainer(config, model, tokenizer, dataset, args, precision,
                            callbacks=[RecordInCheckpoints(recorded), CompleteMarkerCallback(), sync,
                                       *guards(config, model),
                                       *validation.validation_callbacks(held_out)],
                            eval_dataset=held_out)
    replace_progress(trainer, summary=False)  # no Trainer bar or loss table; live: one bar
    result, step_at_start, train_seconds = train_resuming(trainer, choice.checkpoint)
    losses = [e["loss"] for e in trainer.state.log_history
              if "loss" in e and e.get("step", 0) > step_at_start]  # this call's steps
    metrics.update(steps=trainer.state.global_step, max_steps=trainer.state.max_steps,
                   resumed_from_step=step_at_start, train_seconds=round(train_seconds, 1),
                   first_loss=losses[0] if losses else None,
                   final_loss=next((e["loss"] for e in reversed(trainer.state.log_history)
                                    if "loss" in e), None))

    model = trainer.model
    main = distributed.is_main_process()
    if main:
        print(training_line(metrics), flush=True)
        adapter_dir = out / "adapter"
        model.save_pretrained(adapter_dir, safe_serialization=True)
        tokenizer.save_pretrained(adapter_dir)
        save_generation_config(adapter_dir, tokenizer, model.generation_config)  # EOS and <|im_end|>
        log_history = trainer.state.log_history
        (out / "log.json").write_text(json.dumps(log_history, indent=1), encoding="utf-8")
        import matplotlib.pyplot as plt

        plt.close(plot_loss(log_history, out / "loss.png"))

    after: dict[str, Any] = {}
    if evaluate:
        after = evaluate_model(model, tokenizer, config)
        metrics.update(_eval_summary(after, "after"), **paired_tests(before, after),
                       **{n: after.get(n) or before.get(n) for n in COUNT_KEYS})
        print(evaluation_line(metrics, "after"), flush=True)
    metrics.update(
        total_seconds=round(time.perf_counter() - start, 1),
        train_loss=result.training_loss,
        **parameter_counts(model),
        train_examples=len(dataset),
        data_filtered=data_report.filtered,
        data_sources={"train": data_report.notes or [f"read {display_path(data_report.path)}"],
                      **(after.get("data_sources") or before.get("data_sources") or {})},
        **{n: after.get(n) or before.get(n) for n in COUNT_KEYS},
        decoding=after.get("decoding") or before.get("decoding"),
        skipped=sorted(set(before.get("skipped", []) + after.get("skipped", []))),
        validation_loss=validation.validation_losses(trainer.state.log_history),
        validation_examples=len(held_out) if held_out is not None else 0,
        peak_rss_mb=round(peak_rss_mb(), 1),
        peak_gpu_memory_mb=(round(torch.cuda.max_memory_allocated() / 2**20, 1)
                            if torch.cuda.is_available() else None),
        device=precision.device,
        compute_dtype=str(precision.compute_dtype).replace("torch.", ""),
        optim=precision.optim,
        num_threads=torch.get_num_threads(),
        distributed=sync.summary,
        # The weights file that the "after" numbers were measured on, and what measured them.
        adapter_sha256=file_sha256(out / "adapter" / "adapter_model.safetensors") if main else None,
        versions=run_versions(),
    )
    if main:
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2, ensure_ascii=False),
                                          encoding="utf-8")
        if evaluate:
            _write_predictions(out, before, after)
    return metrics
