"""The dry run trains a slice of Qwen2.5-7B in 4-bit on the CPU, as the planner says."""

import math

import pytest

from ift_tutorial.config import load_config
from ift_tutorial.planning.dry_run import dry_run
from ift_tutorial.planning.memory import STATIC


@pytest.fixture(scope="module")
def qwen_report():
    # one decoder layer with the real widths and the full 152k vocabulary (~1 minute:
    # reading the 1.1B fp32 embedding and head parameters dominates each step)
    config = load_config("qwen2.5-7b")
    return dry_run(config, layers=1, steps=2, seq_len=16, batch_size=1)


def test_dry_run_trains(qwen_report):
    r = qwen_report
    assert len(r["losses"]) == 2 and all(math.isfinite(x) for x in r["losses"])
    # random weights and tokens: the loss starts near log(vocabulary size)
    assert abs(r["losses"][0] - math.log(152064)) < 1.5
    assert r["tokens_per_s"] > 0 and r["layers"] == 1


def test_planner_weights_exact_and_total_close(qwen_report):
    measured = qwen_report["measured"]["components_bytes"]
    planned = qwen_report["planned"]["components_bytes"]
    for name in STATIC:
        assert planned[name] == measured[name], name
    peak = qwen_report["measured"]["peak_bytes"]
    # every tensor the model and optimizer own is resident during the steps, and more
    assert peak > qwen_report["measured"]["static_bytes"] == sum(measured.values())
    assert qwen_report["planned"]["total_bytes"] == pytest.approx(peak, rel=0.10)
