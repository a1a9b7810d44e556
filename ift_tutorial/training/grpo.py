"""Reinforcement learning with a verifiable reward: TRL's ``GRPOTrainer`` on the SFT adapter.

:func:`grpo` is what ``ift-tutorial grpo`` runs. Each step it takes a few prompts of a task
whose answers a program can check (:mod:`~ift_tutorial.training.verifiable`), samples a
*group* of ``num_generations`` answers to each, and rewards every answer with the
evaluation's own verdict: 1 for the exact answer followed by end-of-turn, 0 otherwise
(:func:`ift_tutorial.evaluation.exact_match.reward`). No reward model, no critic.

Group relative policy optimisation (Shao et al. 2024, DeepSeekMath) needs no value network
to say whether a reward is good: it compares each answer with the others of its group. For
a group with rewards :math:`r_1, \\dots, r_G`,

.. math:: A_i = \\frac{r_i - \\operatorname{mean}(r)}{\\operatorname{std}(r) + 10^{-4}}

(:func:`group_advantages`, as TRL computes it, std with Bessel's correction). The loss raises
the log-probability of each answer's tokens in proportion to its advantage: right answers
of a group that was mostly wrong are pushed up hard, and a group whose answers all earn the
same reward teaches nothing (every :math:`A_i = 0`).

A run, like :func:`ift_tutorial.training.trainer.train`'s:

1. reads the ``grpo`` section's train and held-out prompts (counted, checked disjoint);
2. loads the 4-bit base with the SFT adapter, trainable (:mod:`~ift_tutorial.training.adapter_runs`);
3. measures the held-out accuracy (greedy, as the evaluation does): the "before" number;
4. trains with ``GRPOTrainer``, its adapter weights kept exact in fp32;
5. saves the adapter, ``log.json``, ``reward.png``, the held-out answers before and after,
   and ``metrics.json`` (the reward per step, one group's numbers, the accuracies with
   their intervals and paired test, :mod:`~ift_tutorial.training.grpo_report`).

The run lock, resume from the newest complete checkpoint, ``run_config.json`` and the guard
against a non-finite loss are those of ``train``.
"""

from __future__ import annotations

import json
import os
import time
import warnings
from pathlib import Path
from typing import Any

import torch
from transformers import set_seed

from . import distributed, finished_runs
from .adapter_runs import (adapter_fingerprint, check_adapter_folder, load_trainable_adapter,
                           restore_trainable, snapshot_trainable)
from .checkpoints import CompleteMarkerCallback, resolve_resume, train_resuming
from .grpo_report import (accuracy_line, data_line, grpo_lines, heldout_statistics,
                          training_line, verdict)
from .guards import guards
from .progress import replace_progress
from .provenance import file_sha256, run_versions
from .run_config import RecordInCheckpoints, start_record
from .runlock import RunLock, die_with_launcher
from .trainer import _checkpointing_args, _clear_frames, peak_rss_mb
from .verifiable import (Prompt, get_task, overlap, read_prompts, trl_reward, trl_rows)
from ..config import ExperimentConfig
from ..errors import UserFacingError
from ..inference.generation import save_generation_config, stop_token_ids
from ..paths import display_path
from ..planning.hardware import Precision, detect_precision, trainable_dtype

# --- group-relative advantages -------------------------------------------------------------


def group_advantages(rewards: list[float], group_size: int, scale: bool = True) -> list[float]:
    """Each reward minus its group's mean, divided by the group's std (+1e-4), as TRL does.

    Args:
        rewards: ``(B * G,)`` rewards, the ``G = group_size`` answers of a prompt together.
        scale: divide by the group's standard deviation (TRL's ``scale_rewards="group"``).

    Example:
        >>> [round(a, 2) for a in group_advantages([1, 0, 0, 0, 1, 1, 1, 1], 4)]
        [1.5, -0.5, -0.5, -0.5, 0.0, 0.0, 0.0, 0.0]
    """
    r = torch.tensor(rewards, dtype=torch.float32).view(-1, group_size)  # (B, G)
    mean = r.mean(dim=1, keepdim=True)  # (B, 1)
    std = r.std(dim=1, keepdim=True) if group_size > 1 else torch.zeros_like(mean)  # Bessel
    adv = r - mean
    if scale:
        adv = adv / (std + 1e-4)
    return adv.flatten().tolist()


class RewardLog:
    """Keeps what the reward function saw, batch by batch: prompt, answer, stopped, reward."""

    def __init__(self) -> None:
        self.batches: list[list[dict[str, Any]]] = []

    def __call__(self, rows: list[dict[str, Any]]) -> None:
        self.batches.append(rows)

    def example_group(self, group_size: int) -> dict[str, Any] | None:
        """The first group whose answers earned different rewards, with its mean, std and
        advantages. When every group earned one reward (a random rehearsal stand-in), the
        first group, whose advantages are all 0; None when nothing was logged."""
        groups = [rows[start:start + group_size] for rows in self.batches
                  for start in range(0, len(rows) - group_size + 1, group_size)]
        mixed = [g for g in groups if len({r["reward"] for r in g}) > 1]
        if not (mixed or groups):
            return None
        group = (mixed or groups)[0]
        rewards = [r["reward"] for r in group]
        r = torch.tensor(rewards)
        return {"prompt": group[0]["prompt"], "answers": [g["answer"] for g in group],
                "stopped": [g["stopped"] for g in group],
                "rewards": rewards, "mean": r.mean().item(), "std": r.std().item(),
                "advantages": group_advantages(rewards, group_size)}

    def same_reward_share(self, group_size: int) -> float | None:
        """The share of groups whose answers all earned the same reward (no signal)."""
        groups = [[r["reward"] for r in rows[s:s + group_size]] for rows in self.batches
                  for s in range(0, len(rows) - group_size + 1, group_size)]
        return sum(len(set(g)) == 1 for g in groups) / len(groups) if groups else None


# --- TRL's configuration and trainer -------------------------------------------------------


def check_settings(config: ExperimentConfig) -> None:
    """The ``grpo`` section's numbers that TRL would reject later, said now with their keys."""
    s = config.grpo
    if s.num_generations < 2:
        raise UserFacingError(f"grpo.num_generations must be at least 2 (a group needs answers "
                              f"to compare), got {s.num_generations}")
    batch = s.per_device_train_batch_size * distributed.world_size()
    if batch % s.num_generations:
        raise UserFacingError(f"grpo.per_device_train_batch_size ({s.per_device_train_batch_size}) "
                              f"x {distributed.world_size()} process(es) must be a multiple of "
                              f"grpo.num_generations ({s.num_generations}): whole groups per step")


def grpo_config(config: ExperimentConfig, output_dir: str | os.PathLike[str], precision: Precision):
    """The ``trl.GRPOConfig`` of a config's ``grpo`` section, for this machine's precision.

    One generation per optimizer step (``steps_per_generation`` 1), generated with
    transformers' ``generate`` (no vLLM), sampled at ``grpo.temperature``; at most
    ``model.max_new_tokens_cap`` tokens per answer when set (a rehearsal's stand-in never stops).
    """
    from trl import GRPOConfig

    s, t = config.grpo, config.training
    cap = config.model.max_new_tokens_cap
    return GRPOConfig(
        output_dir=str(output_dir),
        max_steps=s.max_steps,
        per_device_train_batch_size=s.per_device_train_batch_size,
        gradient_accumulation_steps=1,
        num_generations=s.num_generations,
        max_completion_length=min(s.max_completion_length, cap or s.max_completion_length),
        temperature=s.temperature,
        beta=s.beta,
        learning_rate=s.learning_rate,
        lr_scheduler_type="constant",  # a few dozen steps: no schedule to shape
        max_grad_norm=t.max_grad_norm,
        optim=precision.optim,
        bf16=precision.bf16,
        fp16=precision.fp16,
        **_checkpointing_args(GRPOConfig, t.gradient_checkpointing),
        save_strategy="steps",
        save_steps=s.save_steps,
        save_total_limit=t.save_total_limit,
        logging_steps=s.logging_steps,
        logging_first_step=True,
        logging_nan_inf_filter=False,  # a nan loss is logged as it is: the guard stops the run
        log_completions=False,
        seed=s.seed,
        data_seed=s.seed,
        report_to="none",
        disable_tqdm=False,
        **distributed.trainer_kwargs(),
    )


def build_grpo_trainer(config: ExperimentConfig, model: torch.nn.Module, tokenizer: Any,
                       prompts: list[Prompt], args: Any, precision: Precision,
                       log: RewardLog | None = None, callbacks: list | None = None):
    """TRL's ``GRPOTrainer`` on ``model`` (a trainable ``PeftModel``), rewarded by the task.

    TRL casts the adapter's weights to bf16 when the base is quantised; they are put back
    exactly as they were, in :func:`~ift_tutorial.planning.hardware.trainable_dtype`.
    """
    from datasets import Dataset
    from trl import GRPOTrainer

    task = get_task(config.grpo)
    snapshot = snapshot_trainable(model, trainable_dtype(precision))
    reward = trl_reward(task, stop_token_ids(tokenizer), log)
    trainer = GRPOTrainer(model=model, reward_funcs=reward, args=args, processing_class=tokenizer,
                          train_dataset=Dataset.from_list(trl_rows(prompts)), callbacks=callbacks)
    restore_trainable(trainer.model, snapshot)
    return trainer


# --- the run -------------------------------------------------------------------------------


def grpo(config: ExperimentConfig, adapter: str | os.PathLike[str], output_dir: str | os.PathLike[str],
         resume: str = "auto", evaluate: bool = True, fresh: bool = False) -> dict[str, Any]:
    """Go on training an SFT adapter with GRPO on the ``grpo`` section's verifiable task.

    Args:
        config: the experiment; its ``grpo`` section says what to train on and how.
        adapter: the SFT adapter folder to start from (``train`` wrote ``OUTPUT_DIR/adapter``).
        output_dir: where checkpoints, ``adapter/``, ``log.json``, ``reward.png``,
            ``heldout_answers.jsonl``, ``metrics.json`` and ``run_config.json`` go.
        resume: "auto", "never" or a checkpoint folder, as for ``train``.
        evaluate: measure the held-out accuracy before and after.
        fresh: empty ``output_dir`` first; with ``IFT_REUSE_RUNS=1`` an identical finished
            run is copied instead (:mod:`~ift_tutorial.training.finished_runs`).

    Returns:
        The metrics (also in ``output_dir/metrics.json``).

    Example:
        >>> from ift_tutorial.config import load_config
        >>> m = grpo(load_config("tiny"), "data/adapters/tiny-sft", "runs/grpo")  # doctest: +SKIP
    """
    die_with_launcher()
    adapter_dir = check_adapter_folder(adapter)  # before any lock or loading
    check_settings(config)
    with RunLock(output_dir) as lock:
        try:
            if not fresh:
                return _grpo(config, adapter_dir, Path(output_dir), resume, evaluate, lock)
            out = Path(output_dir)
            extra = {"after": "grpo", "adapter": file_sha256(adapter_dir / "adapter_model.safetensors")}
            return finished_runs.run_fresh(
                config, evaluate, out, lambda: _grpo(config, adapter_dir, out, "never", evaluate, lock),
                extra=extra, lines=grpo_lines)
        except BaseException as err:
            _clear_frames(err)  # a notebook keeps the traceback: let the model be freed
            raise


def _held_out(config: ExperimentConfig, model: Any, tokenizer: Any,
              prompts: list[Prompt]) -> tuple[float, list[dict[str, Any]]]:
    return get_task(config.grpo).evaluate(model, tokenizer, prompts, config)


def _grpo(config: ExperimentConfig, adapter: Path, out: Path, resume: str, evaluate: bool,
          lock: RunLock) -> dict[str, Any]:
    """The body of :func:`grpo`, run while ``lock`` is held."""
    out.mkdir(parents=True, exist_ok=True)
    s, t = config.grpo, config.training
    threads = s.num_threads or t.num_threads
    if threads:
        torch.set_num_threads(distributed.threads_per_rank(threads))
    set_seed(s.seed)
    precision = detect_precision(config.model.compute_dtype, t.optim)
    start = time.perf_counter()
    train_prompts, train_notes = read_prompts(s, "train")  # bad data fails before any loading
    eval_prompts, eval_notes = read_prompts(s, "eval") if evaluate else ([], [])
    args = grpo_config(config, out, precision)  # also forms the process group under a launcher
    lock.share_verdict()

    model, tokenizer = load_trainable_adapter(config, adapter)
    train_file = s.train if isinstance(s.train, str) else None
    recorded = adapter_fingerprint(config, "grpo", tokenizer.chat_template, adapter, train_file)
    start_record(out, resume, recorded)
    metrics: dict[str, Any] = {
        "config": config.name, **config.marker(), "reward": s.reward, "task": s.task,
        "adapter": display_path(adapter), "train_prompts": len(train_prompts),
        "eval_prompts": len(eval_prompts), "heldout_in_train": overlap(train_prompts, eval_prompts),
        "num_generations": s.num_generations,
        "prompts_per_step": s.per_device_train_batch_size // s.num_generations,
        "data_sources": {"train": train_notes, "eval": eval_notes}}
    main = distributed.is_main_process()
    print(data_line(metrics), flush=True)
    before: list[dict[str, Any]] = []
    if evaluate:
        metrics["heldout_accuracy_before"], before = _held_out(config, model, tokenizer, eval_prompts)
        print(accuracy_line(metrics, "before"), flush=True)

    choice = resolve_resume(out, resume)
    log = RewardLog()
    trainer = build_grpo_trainer(config, model, tokenizer, train_prompts, args, precision, log,
                                 callbacks=[RecordInCheckpoints(recorded), CompleteMarkerCallback(),
                                            *guards(config, model)])
    replace_progress(trainer, summary=False)
    with warnings.catch_warnings():  # TRL toggles checkpointing around each generation by the
        warnings.filterwarnings(  # old names, which transformers 5 warns about every step
            "ignore", r"`gradient_checkpointing_(enable|disable)` is deprecated", FutureWarning)
        _, step_at_start, train_seconds = train_resuming(trainer, choice.checkpoint)
    history = trainer.state.log_history
    curve = [{"step": e["step"], "reward": e["reward"]} for e in history if "reward" in e]
    metrics.update(steps=trainer.state.global_step, max_steps=trainer.state.max_steps,
                   resumed_from_step=step_at_start,
                   train_seconds=round(train_seconds, 1), reward_curve=curve,
                   advantage_example=log.example_group(s.num_generations),
                   same_reward_share=log.same_reward_share(s.num_generations),
                   sampled_rewards=[[r["reward"] for r in rows] for rows in log.batches])
    model = trainer.model
    if main:
        print(training_line(metrics), flush=True)
        _save(out, model, tokenizer, history)
    if evaluate:
        metrics["heldout_accuracy_after"], after = _held_out(config, model, tokenizer, eval_prompts)
        metrics.update(heldout_statistics(before, after))
        print(accuracy_line(metrics, "after"), flush=True)
        if main:
            _write_answers(out, eval_prompts, before, after)
    metrics.update(
        total_seconds=round(time.perf_counter() - start, 1), peak_rss_mb=round(peak_rss_mb(), 1),
        peak_gpu_memory_mb=(round(torch.cuda.max_memory_allocated() / 2**20, 1)
                            if torch.cuda.is_available() else None),
        device=precision.device, compute_dtype=str(precision.compute_dtype).replace("torch.", ""),
        optim=precision.optim, num_threads=torch.get_num_threads(),
        adapter_sha256=file_sha256(out / "adapter" / "adapter_model.safetensors") if main else None,
        versions=run_versions())
    if main:
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2, ensure_ascii=False),
                                          encoding="utf-8")
    return metrics


def _save(out: Path, model: Any, tokenizer: Any, history: list[dict[str, Any]]) -> None:
    """The adapter (a PEFT folder with its tokenizer), ``log.json`` and ``reward.png``."""
    import matplotlib.pyplot as plt

    from ..book.plots_rl import plot_reward

    adapter_dir = out / "adapter"
    model.save_pretrained(adapter_dir, safe_serialization=True)
    tokenizer.save_pretrained(adapter_dir)
    save_generation_config(adapter_dir, tokenizer, model.generation_config)
    (out / "log.json").write_text(json.dumps(history, indent=1), encoding="utf-8")
    plt.close(plot_reward(history, out / "reward.png"))


def _write_answers(out: Path, prompts: list[Prompt], before: list[dict], after: list[dict]) -> None:
    """``heldout_answers.jsonl``: each held-out question, its reference, and the greedy answer
    and verdict before and after (the evaluation's own rows)."""
    def answer(row: dict[str, Any]) -> tuple[Any, bool]:
        return row.get("prediction", row.get("response")), verdict(row)

    with (out / "heldout_answers.jsonl").open("w", encoding="utf-8") as fh:
        for p, b, a in zip(prompts, before, after):
            (ab, cb), (aa, ca) = answer(b), answer(a)
            row = {"prompt": p.messages[-1]["content"], "reference": p.reference,
                   "before": ab, "correct_before": cb, "after": aa, "correct_after": ca}
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
