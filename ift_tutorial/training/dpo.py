"""Preference tuning with DPO: TRL's ``DPOTrainer`` on the 4-bit base and the SFT adapter.

:func:`train_dpo` is what ``ift-tutorial dpo`` runs:

1. load the base model in 4-bit NF4 and put the SFT adapter on it, trainable;
2. measure the held-out pairs (log-probabilities, preference accuracy), exact match and
   the language of the answers: the "before" numbers;
3. train with DPO. The reference model is no second model: TRL keeps a frozen copy of the
   SFT adapter (a few megabytes) beside the trained one, and runs the *same* 4-bit base
   with that copy for the reference's log-probabilities (with a new adapter it would
   simply disable it). A reference costs one more forward pass, not one more model;
4. save the adapter (a standard PEFT folder, the trained adapter only) and measure again.

Run lock, resume, ``run_config.json``, the nan guard and ``metrics.json`` work as for
``train`` (:mod:`ift_tutorial.training.trainer`).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import torch
from transformers import set_seed

from . import distributed, finished_runs
from .adapter_runs import (WEIGHTS, adapter_fingerprint, check_adapter_folder, load_trainable_adapter,
                           restore_trainable, snapshot_trainable)
from .checkpoints import CompleteMarkerCallback, resolve_resume, train_resuming
from .guards import NonFiniteLossGuard
from .progress import replace_progress, summary_line, use_summary_line
from .provenance import file_sha256
from .run_config import RecordInCheckpoints, start_record
from .runlock import RunLock, die_with_launcher
from .trainer import _checkpointing_args, _clear_frames, peak_rss_mb
from ..config import ExperimentConfig
from ..evaluation.statistics import intervals, paired_tests
from ..formatting import number, percent
from ..instructions.preferences import load_preferences
from ..paths import resolve_path
from ..planning.hardware import Precision, detect_precision, trainable_dtype


def dpo_config(config: ExperimentConfig, output_dir: str | os.PathLike[str], precision: Precision):
    """The ``trl.DPOConfig`` of a config's ``dpo`` section, for this machine's precision."""
    from trl import DPOConfig

    d = config.dpo
    return DPOConfig(
        output_dir=str(output_dir), beta=d.beta, loss_type=[d.loss_type],
        learning_rate=d.learning_rate, max_steps=d.max_steps,
        per_device_train_batch_size=d.per_device_train_batch_size,
        gradient_accumulation_steps=d.gradient_accumulation_steps,
        lr_scheduler_type=d.lr_scheduler_type, warmup_steps=d.warmup_ratio,
        max_length=d.max_length, optim=precision.optim, bf16=precision.bf16, fp16=precision.fp16,
        **_checkpointing_args(DPOConfig, config.training.gradient_checkpointing),
        save_strategy="steps", save_steps=d.save_steps,
        save_total_limit=d.save_total_limit, logging_steps=d.logging_steps,
        logging_first_step=True, logging_nan_inf_filter=False, seed=d.seed, data_seed=d.seed,
        report_to="none", disable_tqdm=False, **distributed.trainer_kwargs(),
    )


def build_dpo_trainer(model: Any, tokenizer: Any, pairs: list[dict[str, Any]], args: Any,
                      precision: Precision, callbacks: list | None = None):
    """TRL's ``DPOTrainer`` with no ``ref_model``: the reference shares the 4-bit base.

    Given a model that already has an adapter, TRL adds a frozen copy of it named "ref"
    and runs the reference with that copy in place of the trained one. It also casts the
    trainable LoRA weights to bf16 for a quantised base, which would round away what SFT
    learnt (and make the policy differ from its reference at step 0): the exact weights
    go back, in :func:`~ift_tutorial.planning.hardware.trainable_dtype`.
    """
    from datasets import Dataset
    from trl import DPOTrainer

    data = Dataset.from_list([{k: p[k] for k in ("prompt", "chosen", "rejected")} for p in pairs])
    exact = snapshot_trainable(model, trainable_dtype(precision))
    trainer = DPOTrainer(model=model, ref_model=None, args=args, train_dataset=data,
                         processing_class=tokenizer, callbacks=callbacks)
    restore_trainable(trainer.model, exact)
    return trainer


def measure(model: Any, tokenizer: Any, config: ExperimentConfig, pairs: list[dict[str, Any]],
            reference: tuple[torch.Tensor, torch.Tensor] | None = None) -> dict[str, Any]:
    """Held-out pairs, exact match and the language of the answers, for the model as it is.

    Args:
        reference: the reference's (chosen, rejected) log-probabilities; None measures the
            reference itself (before DPO: every reward margin is 0).

    Returns:
        :func:`~ift_tutorial.evaluation.preference.preference_metrics`, plus ``exact_match``,
        ``language`` (fraction answered in the asked language), ``n_exact_match``, the
        log-probabilities themselves under ``logps``, and ``outcomes`` (0 or 1 per pair or
        question, for each of the four accuracies).
    """
    from ..evaluation.exact_match import evaluate_exact_match
    from ..evaluation.preference import answer_logps, language_outcomes, preference_metrics
    from ..tinyworld.pretrain import tiny_world_names
    from ..tinyworld.tasks import read_tasks

    logps = answer_logps(model, tokenizer, pairs, batch_size=config.training.eval_batch_size)
    out = preference_metrics(logps, reference or logps, config.dpo.beta, pairs)
    out["logps"] = logps
    if config.data.eval_exact_match:
        questions = read_tasks(config.data.eval_exact_match)[:config.data.max_eval_examples]
        em = evaluate_exact_match(model, tokenizer, questions, config.training.max_new_tokens,
                                  config.training.eval_batch_size)
        model.train()
        language = language_outcomes(em["predictions"], tiny_world_names())
        out.update(exact_match=em["exact_match"], n_exact_match=em["n"],
                   language=sum(language) / len(language) if language else float("nan"),
                   predictions=em["predictions"])
        out["outcomes"] |= {"exact_match": em["outcomes"]["exact_match"], "language": language}
    return out


_SUMMARY = ("preference_accuracy", "likelihood_accuracy", "reward_margin", "chosen_logps",
            "rejected_logps", "accuracy_by_kind", "exact_match", "language")


def evaluation_line(metrics: dict[str, Any], when: str) -> str:
    """``after DPO: preference accuracy 85 %, reward margin 4.93, log-probabilities chosen -20.7,
    rejected -80.6 (540 pairs); exact match 68 %, in the asked language 100 % (180 questions)``."""
    m = {k: metrics.get(f"{k}_{when}") for k in _SUMMARY}
    line = (f"{when} DPO: preference accuracy {percent(m['preference_accuracy'])}, reward margin "
            f"{number(m['reward_margin'])}, log-probabilities chosen {number(m['chosen_logps'])}, "
            f"rejected {number(m['rejected_logps'])} ({metrics.get('n_pairs')} pairs)")
    if m["exact_match"] is not None:
        line += (f"; exact match {percent(m['exact_match'])}, in the asked language "
                 f"{percent(m['language'])} ({metrics.get('n_exact_match')} questions)")
    return line


def run_lines(metrics: dict[str, Any]) -> list[str]:
    """The summary lines of a DPO run, one per phase, from its metrics."""
    lines = [f"data: {metrics['train_pairs']:,} preference pairs"]
    if "preference_accuracy_before" in metrics:
        lines.append(evaluation_line(metrics, "before"))
    lines.append(summary_line(metrics.get("resumed_from_step") or 0, metrics["steps"],
                              metrics.get("max_steps") or metrics["steps"],
                              metrics.get("train_seconds") or 0.0, metrics.get("first_loss"),
                              metrics.get("final_loss")))
    if "preference_accuracy_after" in metrics:
        lines.append(evaluation_line(metrics, "after"))
    return lines


def train_dpo(config: ExperimentConfig, adapter: str | os.PathLike[str],
              output_dir: str | os.PathLike[str], resume: str = "auto", evaluate: bool = True,
              fresh: bool = False) -> dict[str, Any]:
    """DPO-tune the SFT ``adapter`` on ``config.dpo.train``'s preference pairs.

    Args:
        config: the experiment; its ``dpo`` section drives the run.
        adapter: the SFT adapter folder (``adapter/`` of a ``train`` run).
        output_dir: where checkpoints, ``adapter/``, ``log.json``, ``metrics.json`` and
            ``run_config.json`` go.
        resume: "auto" (newest complete checkpoint), "never", or a checkpoint folder.
        evaluate: measure the held-out pairs and questions before and after.
        fresh: empty ``output_dir`` and train from step 0; with ``IFT_REUSE_RUNS=1`` an
            identical finished run is copied instead (:mod:`~ift_tutorial.training.finished_runs`).

    Returns:
        The metrics (also in ``output_dir/metrics.json``).

    Example:
        >>> metrics = train_dpo(load_config("tiny"), "data/adapters/tiny-sft", "runs/dpo")  # doctest: +SKIP
    """
    # Bad input fails here, before the lock and the model: no folder is left behind.
    path = check_adapter_folder(adapter)
    d = config.dpo
    data = load_preferences(d.train)
    heldout = load_preferences(d.eval, max_examples=d.max_eval_examples)[0] \
        if evaluate and d.eval else []
    die_with_launcher()
    with RunLock(output_dir) as lock:
        try:
            if not fresh:
                return _train_dpo(config, path, Path(output_dir), resume, data, heldout, lock)
            extra = {"step": "dpo", "sft adapter": file_sha256(path / WEIGHTS)}
            return finished_runs.run_fresh(
                config, evaluate, Path(output_dir),
                lambda: _train_dpo(config, path, Path(output_dir), "never", data, heldout, lock),
                extra=extra, lines=run_lines)
        except BaseException as err:
            _clear_frames(err)
            raise


def _train_dpo(config: ExperimentConfig, adapter: Path, out: Path, resume: str,
               data: tuple[list[dict[str, Any]], Any], heldout: list[dict[str, Any]],
               lock: RunLock) -> dict[str, Any]:
    """The body of :func:`train_dpo`, run while ``lock`` is held; ``data`` is the training
    pairs and their report, ``heldout`` the pairs measured before and after (or none)."""
    out.mkdir(parents=True, exist_ok=True)
    d = config.dpo
    if config.training.num_threads:
        torch.set_num_threads(distributed.threads_per_rank(config.training.num_threads))
    set_seed(d.seed)
    precision = detect_precision(config.model.compute_dtype, config.training.optim)
    start = time.perf_counter()
    args = dpo_config(config, out, precision)
    lock.share_verdict()
    pairs, report = data
    model, tokenizer = load_trainable_adapter(config, adapter)
    train_file = str(resolve_path(d.train)) if isinstance(d.train, str) else None
    recorded = adapter_fingerprint(config, "dpo", tokenizer.chat_template, adapter, train_file)
    start_record(out, resume, recorded)
    metrics: dict[str, Any] = {"config": config.name, "step": "dpo", **config.marker(),
                               "train_pairs": len(pairs), "data_filtered": report.filtered,
                               "max_steps": d.max_steps, "beta": d.beta, "n_pairs": len(heldout)}
    print(run_lines({**metrics, "steps": 0})[0], flush=True)
    before: dict[str, Any] = {}
    if heldout:
        before = measure(model, tokenizer, config, heldout)  # the policy is the reference here
        metrics.update({f"{k}_before": before.get(k) for k in _SUMMARY})
        metrics["n_exact_match"] = before.get("n_exact_match")
        print(evaluation_line(metrics, "before"), flush=True)

    choice = resolve_resume(out, resume)
    trainer = build_dpo_trainer(model, tokenizer, pairs, args, precision, callbacks=[
        RecordInCheckpoints(recorded), CompleteMarkerCallback(), NonFiniteLossGuard(config)])
    use_summary_line(trainer)
    result, step_at_start, train_seconds = train_resuming(trainer, choice.checkpoint)
    model = trainer.model
    history = trainer.state.log_history
    if distributed.is_main_process():
        model.save_pretrained(out / "adapter", safe_serialization=True, selected_adapters=["default"])
        tokenizer.save_pretrained(out / "adapter")
        (out / "log.json").write_text(json.dumps(history, indent=1), encoding="utf-8")
    if heldout:
        after = measure(model, tokenizer, config, heldout, reference=before["logps"])
        metrics.update({f"{k}_after": after.get(k) for k in _SUMMARY})
        # each accuracy's 95 % interval, and McNemar on the same pairs and questions
        metrics.update(intervals(before, "before") | intervals(after, "after")
                       | paired_tests(before, after))
        print(evaluation_line(metrics, "after"), flush=True)
        _write_pairs(out, heldout, before, after)
    losses = [e["loss"] for e in history if "loss" in e]
    metrics.update(
        steps=trainer.state.global_step, resumed_from_step=step_at_start,
        train_seconds=round(train_seconds, 1), total_seconds=round(time.perf_counter() - start, 1),
        train_loss=result.training_loss, first_loss=losses[0] if losses else None,
        final_loss=losses[-1] if losses else None,
        peak_rss_mb=round(peak_rss_mb(), 1), device=precision.device,
        num_threads=torch.get_num_threads(),
    )
    if distributed.is_main_process():
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2, ensure_ascii=False),
                                          encoding="utf-8")
    return metrics


def _write_pairs(out: Path, pairs: list[dict[str, Any]], before: dict[str, Any],
                 after: dict[str, Any]) -> None:
    """``pairs.jsonl``: each held-out pair's log-probabilities before and after DPO."""
    (bc, br), (ac, ar) = before["logps"], after["logps"]
    with (out / "pairs.jsonl").open("w", encoding="utf-8") as fh:
        for i, p in enumerate(pairs):
            row = {k: p.get(k) for k in ("task", "lang", "rejected_kind")}
            row.update(prompt=p["prompt"][-1]["content"], chosen=p["chosen"][-1]["content"],
                       rejected=p["rejected"][-1]["content"],
                       chosen_logp_before=round(bc[i].item(), 4), rejected_logp_before=round(br[i].item(), 4),
                       chosen_logp_after=round(ac[i].item(), 4), rejected_logp_after=round(ar[i].item(), 4))
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


def loss_check(config: ExperimentConfig, adapter: str | os.PathLike[str],
               pairs: list[dict[str, Any]], steps: int = 2) -> dict[str, float]:
    """DPO's loss on one batch, by TRL and by :func:`~ift_tutorial.training.dpo_loss.dpo_loss`.

    A few DPO steps first, so that the policy differs from its reference (at step 0 both
    losses are log 2 whatever the code). Then one batch of TRL's own data loader goes
    through TRL's ``compute_loss`` and through the package's few lines, which get the
    policy's and the reference's log-probabilities with the trained adapter and with its
    frozen copy.

    Returns:
        ``{"trl": ..., "ours": ..., "difference": ...}`` (absolute difference).
    """
    import tempfile

    from trl.trainer.utils import use_adapter

    from .dpo_loss import dpo_loss, sequence_logps

    if config.training.num_threads:
        torch.set_num_threads(config.training.num_threads)
    precision = detect_precision(config.model.compute_dtype, config.training.optim)
    model, tokenizer = load_trainable_adapter(config, adapter)
    with tempfile.TemporaryDirectory() as tmp:
        args = dpo_config(config, tmp, precision)
        args.max_steps, args.save_strategy, args.logging_steps = steps, "no", steps
        trainer = build_dpo_trainer(model, tokenizer, pairs, args, precision)
        replace_progress(trainer, summary=False)  # a check, not a run: no progress line
        trainer.train()
        batch = trainer._prepare_inputs(next(iter(trainer.get_train_dataloader())))
        model = trainer.model
        model.eval()
        with torch.no_grad():
            trl_loss = trainer.compute_loss(model, batch).item()
            inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "completion_mask")}
            policy = sequence_logps(model, **inputs).chunk(2)  # (chosen, rejected), each (B,)
            with use_adapter(model, adapter_name="ref"):
                reference = sequence_logps(model, **inputs).chunk(2)
        ours = dpo_loss(*policy, *reference, beta=config.dpo.beta).item()
    return {"trl": trl_loss, "ours": ours, "difference": abs(trl_loss - ours)}
