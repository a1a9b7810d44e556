"""``ift-tutorial grpo``: the command line of :func:`~ift_tutorial.training.grpo.grpo`.

The command line's own module (:mod:`ift_tutorial.cli`) hands in how it reads ``--config``
and ``--set`` and how it checks an output folder, a ``--resume`` value and a full disk, so
that ``grpo`` says a bad input the way ``train`` does and this module needs nothing from it.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

DESCRIPTION = (
    "Reinforcement learning with TRL's GRPOTrainer, starting from an SFT adapter: each step "
    "samples grpo.num_generations answers per prompt and rewards each with the evaluation's "
    "own verdict (grpo.reward). Writes OUTPUT_DIR/adapter, OUTPUT_DIR/metrics.json, "
    "OUTPUT_DIR/log.json and OUTPUT_DIR/reward.png; running it again resumes.")


def _run(args: argparse.Namespace, hooks: dict[str, Callable[..., Any]]) -> int:
    from .adapter_runs import check_adapter_folder

    cfg = hooks["config_of"](args)  # a bad config fails fast, before the heavy imports
    hooks["output_folder"](args.output_dir, "--output-dir")
    hooks["check_resume"](args.resume)
    check_adapter_folder(args.adapter)  # a missing adapter: one line, before any loading
    from .grpo import grpo

    with hooks["writing_to"](args.output_dir, "--output-dir"):
        metrics = grpo(cfg, args.adapter, args.output_dir, resume=args.resume,
                       evaluate=not args.no_eval)
    print(json.dumps(metrics, indent=2, ensure_ascii=False, default=str))
    return 0


def add_grpo_parser(sub: argparse._SubParsersAction, **hooks: Callable[..., Any]) -> None:
    """Add the ``grpo`` subcommand to ``sub``.

    Args:
        hooks: ``config_of(args)``, ``add_config_args(parser)``, ``output_folder(path, option)``,
            ``check_resume(value)`` and ``writing_to(path, option)`` (a context manager), as
            :mod:`ift_tutorial.cli` defines them for ``train``.
    """
    p = sub.add_parser("grpo", help="go on training an SFT adapter with GRPO and a verifiable "
                       "reward", description=DESCRIPTION)
    hooks["add_config_args"](p)
    p.add_argument("--adapter", required=True, help="the SFT adapter folder to start from")
    p.add_argument("--output-dir", required=True, help="where checkpoints, adapter and metrics go")
    p.add_argument("--resume", default="auto",
                   help="'auto' (resume from the last checkpoint in OUTPUT_DIR if any), "
                   "'never', or a checkpoint folder (default: auto)")
    p.add_argument("--no-eval", action="store_true",
                   help="skip the held-out accuracy before and after")
    p.set_defaults(handler=lambda args: _run(args, hooks))
