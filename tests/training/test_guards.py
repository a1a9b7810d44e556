"""Guards on a run: a non-finite loss stops it with a reason, not 45 minutes of nan."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
from helpers import small_train_file, tiny_config

from ift_tutorial import cli
from ift_tutorial.training.guards import NonFiniteLossError, NonFiniteLossGuard


@pytest.mark.parametrize("logs", [{"loss": math.inf}, {"loss": math.nan}, {"loss": 0.0, "grad_norm": math.nan}])
def test_an_injected_non_finite_value_stops_the_run(logs):
    guard = NonFiniteLossGuard(tiny_config())
    with pytest.raises(NonFiniteLossError, match=r"at step 7: the run stopped.*learning rate.*fp16 can overflow"):
        guard.on_log(None, SimpleNamespace(global_step=7), None, logs=logs)
    guard.on_log(None, SimpleNamespace(global_step=8), None, logs={"loss": 1.5, "grad_norm": 0.3})


def test_a_diverging_run_stops_at_once_with_one_line(tmp_path, capsys):
    """A learning rate of 1e30 sends the weights to inf within three steps. The Trainer's own
    filter would log such a loss as 0.0; the run logs it as it is and stops."""
    data = small_train_file(tmp_path / "train.jsonl", 40)
    out = tmp_path / "run"
    status = cli.main(["train", "--config", "tiny", "--output-dir", str(out), "--no-eval",
                       "--set", "training.learning_rate=1e30", "--set", "training.max_steps=6",
                       "--set", "training.logging_steps=1", "--set", f"data.train={data}",
                       "--set", "training.per_device_train_batch_size=4"])
    err = capsys.readouterr().err
    assert status == 2 and "Traceback" not in err
    [line] = [x for x in err.splitlines() if x.startswith("error:")]
    assert " is nan" in line and "the run stopped" in line
    assert not (out / "adapter").exists()  # no broken adapter saved as if it were a result
