"""Progress bars: live where someone watches, one summary line where nobody does.

A progress bar helps a reader who watches a cell or a terminal. In a built page it
is noise: Jupyter Book and nbval execute the notebooks with nbclient, and every
redraw of a bar becomes a line of output (chapter 7 once showed 34 of them). So the
package decides once, with :func:`live_progress`:

* ``IFT_QUIET_PROGRESS=1`` (set by ``make book-html`` and ``book/conftest.py``, the
  two places that execute the notebooks without a reader): quiet;
  ``IFT_QUIET_PROGRESS=0``: live, whatever the output is;
* otherwise live inside a Jupyter or Colab kernel, and on a terminal; quiet when the
  output goes to a file or a pipe (a CI log, a test's subprocess).

Quiet means: the progress bars of ``datasets``, ``transformers`` and the hub are off
(:func:`quiet_library_progress`) and the package's own bars are disabled
(``tqdm(..., disable=not live_progress())``).

Live or quiet, the Trainer's own progress never shows: its text bar, the notebook's HTML
bar with its table of losses per logged step, and the printed log dicts are taken out
(:func:`replace_progress`); where progress is live one tqdm bar (:class:`LiveBar`) runs
while training and goes when it ends. What stays is one summary line per phase of a run
(:func:`run_lines`: data, evaluation before, training, evaluation after), written from
the run's metrics, so that a run copied from an earlier identical one prints the same
lines as a run trained now. The losses are in ``log.json``, the curve in ``loss.png``.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import Any

from transformers import TrainerCallback

from ..errors import UserFacingError
from ..formatting import large, number, percent, seconds

#: The environment variable that forces quiet (``1``) or live (``0``) progress.
QUIET_ENV = "IFT_QUIET_PROGRESS"
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


def in_jupyter_kernel() -> bool:
    """True inside a Jupyter (or Colab) kernel, where a bar redraws in place."""
    if "google.colab" in sys.modules:
        return True
    if "ipykernel" not in sys.modules:
        return False
    from IPython import get_ipython

    shell = get_ipython()
    return shell is not None and type(shell).__name__ in {"ZMQInteractiveShell", "Shell"}


def live_progress() -> bool:
    """Whether to draw live progress bars now (see the module docstring for the rule).

    Raises:
        UserFacingError: ``IFT_QUIET_PROGRESS`` is set to something else than 0/1.

    Example:
        >>> from tqdm.auto import tqdm
        >>> for step in tqdm(range(100), disable=not live_progress()):  # doctest: +SKIP
        ...     pass
    """
    value = os.environ.get(QUIET_ENV, "").strip().lower()
    if value in _TRUE:
        return False
    if value in _FALSE:
        return True
    if value:
        raise UserFacingError(f"{QUIET_ENV}={value!r}: use 1 (no progress bars) or 0 (live bars)")
    if in_jupyter_kernel():
        return True
    isatty = getattr(sys.stderr, "isatty", None)
    return bool(isatty and isatty())


def quiet_library_progress() -> bool:
    """Turn off the bars of ``datasets``, ``transformers`` and the hub when not live.

    Live bars are left as the libraries (and the reader's settings) have them.
    Returns True when the bars were turned off.
    """
    if live_progress():
        return False
    import datasets
    from huggingface_hub.utils import disable_progress_bars
    from transformers.utils import logging as hf_logging

    datasets.disable_progress_bars()  # map/filter/tokenize bars, in SFTTrainer too
    hf_logging.disable_progress_bar()  # "Loading weights" and other transformers bars
    disable_progress_bars()  # downloads from the hub
    return True


def summary_line(first_step: int, last_step: int, max_steps: int, elapsed_s: float,
                 first_loss: float | None, last_loss: float | None) -> str:
    """The one line that says what training did (the training phase of :func:`run_lines`).

    Example:
        >>> summary_line(0, 400, 400, 114.2, 3.412, 0.1234)
        'training: 400 steps in 1 min 54 s, loss 3.41 → 0.123'
        >>> summary_line(200, 400, 400, 57.0, 0.5123, 0.1234)
        'training: steps 201–400 of 400 in 57 s, loss 0.512 → 0.123'
    """
    done = last_step - first_step
    if not done:
        steps = f"no steps (already at step {last_step} of {max_steps})"
    elif first_step == 0 and last_step == max_steps:
        steps = f"{done} steps"
    else:
        steps = f"steps {first_step + 1}–{last_step} of {max_steps}"
    line = f"training: {steps} in {seconds(elapsed_s)}"
    if first_loss is not None and last_loss is not None:
        line += f", loss {number(first_loss)} → {number(last_loss)}"
    return line


# --- the summary lines of a run, one per phase, from its metrics --------------------------

#: (label, metrics key, key of its number of items, unit, kind) of an evaluation line.
EVAL_PARTS = (
    ("exact match", "exact_match", "n_exact_match", "questions", ""),
    ("IFEval", "ifeval_prompt_level_strict_acc", "n_ifeval", "prompts", " prompt-level strict"),
    ("GSM8K", "gsm8k_flexible_acc", "n_gsm8k", "problems", " flexible"),
)


def data_line(metrics: dict[str, Any]) -> str:
    """``data: 4,900 conversations read, 4,870 kept (30 longer than 512 tokens)``.

    Example:
        >>> data_line({"train_read": 4900, "train_examples": 4870,
        ...            "data_filtered": {"too_long": 30}, "max_length": 512})
        'data: 4,900 conversations read, 4,870 kept (30 longer than 512 tokens)'
    """
    kept = metrics.get("train_examples")
    read = metrics.get("train_read", kept)
    filtered = metrics.get("data_filtered") or {}
    reasons = [f"{n:,} " + (f"longer than {metrics.get('max_length')} tokens"
                            if reason == "too_long" else reason.replace("_", " "))
               for reason, n in filtered.items()]
    line = f"data: {read:,} conversations read, {kept:,} kept"
    line += f" ({', '.join(reasons)})" if reasons else ""
    # evaluation items that share a 13-gram with the data (instructions.contamination)
    overlap = {k: n for k, n in (metrics.get("data_overlap") or {}).items() if n}
    shared = ", ".join(f"{k} {n:,}" for k, n in overlap.items())
    return line + (f"; evaluation items sharing a 13-gram with it: {shared}" if shared else "")


def evaluation_line(metrics: dict[str, Any], when: str) -> str:
    """``before tuning: exact match 0 % (180 questions), …, answer-token perplexity 1.0 M``.

    Reads ``<key>_<when>`` and the ``n_*`` counts of a run's metrics; the scores a config
    leaves out are named once, on the "before" line.

    Example:
        >>> evaluation_line({"exact_match_after": 0.7389, "n_exact_match": 180,
        ...                  "answer_perplexity_after": 1.6016}, "after")
        'after tuning: exact match 74 % (180 questions), answer-token perplexity 1.60'
    """
    parts = []
    for label, key, n_key, unit, kind in EVAL_PARTS:
        value = metrics.get(f"{key}_{when}")
        if value is not None:
            n = metrics.get(n_key)
            parts.append(f"{label} {percent(value)}{kind}" + (f" ({n} {unit})" if n else ""))
    ppl = metrics.get(f"answer_perplexity_{when}")
    if ppl is not None:
        parts.append(f"answer-token perplexity {large(ppl)}")
    line = f"{when} tuning: " + (", ".join(parts) or "nothing measured")
    skipped = metrics.get("skipped") or []
    if when == "before" and skipped:
        line += "; not measured: " + ", ".join(s.split(":")[0] for s in skipped)
    return line


def training_line(metrics: dict[str, Any]) -> str:
    """The training phase of a run's metrics (:func:`summary_line`)."""
    return summary_line(metrics.get("resumed_from_step") or 0, metrics["steps"],
                        metrics.get("max_steps") or metrics["steps"],
                        metrics.get("train_seconds") or 0.0, metrics.get("first_loss"),
                        metrics.get("final_loss"))


def run_lines(metrics: dict[str, Any]) -> list[str]:
    """Every summary line of a finished run, in the order a run prints them.

    A run copied from an earlier one (:mod:`~ift_tutorial.training.finished_runs`) prints
    these, so that it shows what the run showed when it was trained.
    """
    lines = [data_line(metrics)] if "train_examples" in metrics else []
    if any(k.endswith("_before") for k in metrics):
        lines.append(evaluation_line(metrics, "before"))
    lines.append(training_line(metrics))
    if any(k.endswith("_after") for k in metrics):
        lines.append(evaluation_line(metrics, "after"))
    return lines


class SummaryLine(TrainerCallback):
    """A Trainer callback that prints one summary line when training ends (main rank).

    For a bare ``transformers.Trainer`` (the package's :func:`~ift_tutorial.training.trainer.train`
    prints :func:`training_line` from the run's metrics instead); the losses stay in
    ``trainer.state.log_history``.
    """

    def __init__(self, print_fn: Callable[[str], Any] = print):
        self.print_fn = print_fn
        self.first_step, self.start = 0, 0.0
        self.first_loss: float | None = None
        self.last_loss: float | None = None

    def on_train_begin(self, args, state, control, **kwargs):  # noqa: D102
        self.first_step, self.start = state.global_step, time.perf_counter()  # after a resume too
        self.first_loss = self.last_loss = None

    def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: D102
        if logs and "loss" in logs:
            if self.first_loss is None:
                self.first_loss = float(logs["loss"])
            self.last_loss = float(logs["loss"])

    def on_train_end(self, args, state, control, **kwargs):  # noqa: D102
        if state.is_world_process_zero:
            self.print_fn(summary_line(self.first_step, state.global_step, state.max_steps,
                                       time.perf_counter() - self.start, self.first_loss,
                                       self.last_loss))


class LiveBar(TrainerCallback):
    """One tqdm bar over the optimizer steps, its loss beside it (main rank): what a reader
    watching a Jupyter cell or a terminal sees instead of the Trainer's HTML table."""

    def __init__(self):
        self.bar, self.shown = None, 0

    def on_train_begin(self, args, state, control, **kwargs):  # noqa: D102
        if state.is_world_process_zero:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=state.max_steps, initial=state.global_step, desc="training",
                            unit="step", leave=False)

    def on_step_end(self, args, state, control, **kwargs):  # noqa: D102
        if self.bar is not None:
            self.bar.update(state.global_step - self.bar.n)

    def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: D102
        if self.bar is not None and logs and "loss" in logs:
            self.bar.set_postfix(loss=number(float(logs["loss"])), refresh=False)

    def on_train_end(self, args, state, control, **kwargs):  # noqa: D102
        if self.bar is not None:
            self.shown = self.bar.n  # the steps the bar counted
            self.bar.close()  # leave=False: the summary line stays, the bar goes
            self.bar = None


def replace_progress(trainer, summary: bool = True) -> bool:
    """Take the Trainer's own progress out (its bar, the notebook's HTML bar and loss table,
    the printed log dicts); put one :class:`LiveBar` in when progress is live.

    Args:
        summary: also add a :class:`SummaryLine` (a bare Trainer; :func:`train` prints its
            own line from the metrics and passes False).

    Returns:
        True when progress is live (a bar was added).
    """
    from transformers.trainer_callback import PrinterCallback, ProgressCallback
    from transformers.utils.notebook import NotebookProgressCallback

    for callback in (ProgressCallback, NotebookProgressCallback, PrinterCallback):
        trainer.remove_callback(callback)
    if summary:
        trainer.add_callback(SummaryLine())
    live = live_progress()
    if live:
        trainer.add_callback(LiveBar())
    return live


def use_summary_line(trainer) -> bool:
    """:func:`replace_progress` with a :class:`SummaryLine`; True when nobody watches
    (no live bar was added)."""
    return not replace_progress(trainer, summary=True)
