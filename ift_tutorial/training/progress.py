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
(:func:`quiet_library_progress`), the package's own bars are disabled
(``tqdm(..., disable=not live_progress())``), and the Trainer's bar and per-log dicts
are replaced by one line at the end of training (:class:`SummaryLine`).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import Any

from transformers import TrainerCallback

from ..errors import UserFacingError
from ..formatting import number, seconds

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
    """The one line printed instead of the Trainer's bar.

    Example:
        >>> summary_line(0, 400, 400, 114.2, 3.412, 0.1234)
        'trained steps 1-400 of 400 in 1 min 54 s, loss 3.41 -> 0.123'
    """
    done = last_step - first_step
    steps = f"steps {first_step + 1}-{last_step}" if done else "no steps"
    line = f"trained {steps} of {max_steps} in {seconds(elapsed_s)}"
    if first_loss is not None:
        line += f", loss {number(first_loss)} -> {number(last_loss)}"
    return line


class SummaryLine(TrainerCallback):
    """A Trainer callback that prints one summary line when training ends (main rank).

    Used instead of ``transformers``' ``ProgressCallback`` when nobody watches; the
    losses stay in ``trainer.state.log_history`` (and the run's ``log.json``).
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


def use_summary_line(trainer) -> bool:
    """Replace ``trainer``'s progress bar (and printed log dicts) by :class:`SummaryLine`
    when progress is not live. Returns True when it did."""
    if live_progress():
        return False
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    trainer.remove_callback(ProgressCallback)
    trainer.remove_callback(PrinterCallback)
    trainer.add_callback(SummaryLine())
    return True
