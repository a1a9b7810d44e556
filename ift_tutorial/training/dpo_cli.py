"""``ift-tutorial dpo``: the command line of :func:`~ift_tutorial.training.dpo.train_dpo`.

Its options and checks are those of every run that starts from an SFT adapter
(:mod:`~ift_tutorial.training.adapter_cli`); this module says what is DPO's own.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from .adapter_cli import AdapterRun, add_adapter_parser

DESCRIPTION = (
    "Preference tuning with TRL's DPOTrainer, starting from an SFT adapter: the pairs of "
    "dpo.train (prompt, chosen, rejected), the reference being the same 4-bit base with a "
    "frozen copy of the adapter. Writes OUTPUT_DIR/adapter, OUTPUT_DIR/metrics.json, "
    "OUTPUT_DIR/log.json and OUTPUT_DIR/pairs.jsonl; running it again resumes.")


def _train_dpo() -> AdapterRun:
    from .dpo import train_dpo

    return train_dpo


def add_dpo_parser(sub: argparse._SubParsersAction, **hooks: Callable[..., Any]) -> None:
    """Add the ``dpo`` subcommand to ``sub`` (``hooks`` as for
    :func:`~ift_tutorial.training.adapter_cli.add_adapter_parser`)."""
    add_adapter_parser(sub, "dpo", help="go on training an SFT adapter with DPO on preference "
                       "pairs", description=DESCRIPTION,
                       no_eval_help="skip the held-out pairs and questions before and after",
                       load_run=_train_dpo, hooks=hooks)
