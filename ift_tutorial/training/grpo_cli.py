"""``ift-tutorial grpo``: the command line of :func:`~ift_tutorial.training.grpo.grpo`.

Its options and checks are those of every run that starts from an SFT adapter
(:mod:`~ift_tutorial.training.adapter_cli`); this module says what is GRPO's own.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from .adapter_cli import AdapterRun, add_adapter_parser

DESCRIPTION = (
    "Reinforcement learning with TRL's GRPOTrainer, starting from an SFT adapter: each step "
    "samples grpo.num_generations answers per prompt and rewards each with the evaluation's "
    "own verdict (grpo.reward). Writes OUTPUT_DIR/adapter, OUTPUT_DIR/metrics.json, "
    "OUTPUT_DIR/log.json and OUTPUT_DIR/reward.png; running it again resumes.")


def _grpo() -> AdapterRun:
    from .grpo import grpo

    return grpo


def add_grpo_parser(sub: argparse._SubParsersAction, **hooks: Callable[..., Any]) -> None:
    """Add the ``grpo`` subcommand to ``sub`` (``hooks`` as for
    :func:`~ift_tutorial.training.adapter_cli.add_adapter_parser`)."""
    add_adapter_parser(sub, "grpo", help="go on training an SFT adapter with GRPO and a verifiable "
                       "reward", description=DESCRIPTION,
                       no_eval_help="skip the held-out accuracy before and after",
                       load_run=_grpo, hooks=hooks)
