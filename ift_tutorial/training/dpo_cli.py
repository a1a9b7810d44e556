"""``ift-tutorial dpo``: the command line of :func:`~ift_tutorial.training.dpo.train_dpo`.

Like ``grpo`` (:mod:`ift_tutorial.training.grpo_cli`), the command line's own module hands
in how it reads ``--config`` and ``--set`` and how it checks an output folder, a ``--resume``
value and a full disk, so that ``dpo`` says a bad input the way ``train`` does.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

DESCRIPTION = (
    "Preference tuning with TRL's DPOTrainer, starting from an SFT adapter: the pairs of "
    "dpo.train (prompt, chosen, rejected), the reference being the same 4-bit base with a "
    "frozen copy of the adapter. Writes OUTPUT_DIR/adapter, OUTPUT_DIR/metrics.json, "
    "OUTPUT_DIR/log.json and OUTPUT_DIR/pairs.jsonl; running it again resumes.")


def _run(args: argparse.Namespace, hooks: dict[str, Callable[..., Any]]) -> int:
    from .adapter_runs import check_adapter_folder

    cfg = hooks["config_of"](args)  # a bad config fails fast, before the heavy imports
    hooks["output_folder"](args.output_dir, "--output-dir")
    hooks["check_resume"](args.resume)
    check_adapter_folder(args.adapter)  # a missing adapter: one line, before any loading
    from .dpo import train_dpo

    with hooks["writing_to"](args.output_dir, "--output-dir"):
        metrics = train_dpo(cfg, args.adapter, args.output_dir, resume=args.resume,
                            evaluate=not args.no_eval)
    print(json.dumps(metrics, indent=2, ensure_ascii=False, default=str))
    return 0


def add_dpo_parser(sub: argparse._SubParsersAction, **hooks: Callable[..., Any]) -> None:
    """Add the ``dpo`` subcommand to ``sub`` (``hooks`` as for
    :func:`~ift_tutorial.training.grpo_cli.add_grpo_parser`)."""
    p = sub.add_parser("dpo", help="go on training an SFT adapter with DPO on preference pairs",
                       description=DESCRIPTION)
    hooks["add_config_args"](p)
    p.add_argument("--adapter", required=True, help="the SFT adapter folder to start from")
    p.add_argument("--output-dir", required=True, help="where checkpoints, adapter and metrics go")
    p.add_argument("--resume", default="auto",
                   help="'auto' (resume from the last checkpoint in OUTPUT_DIR if any), "
                   "'never', or a checkpoint folder (default: auto)")
    p.add_argument("--no-eval", action="store_true",
                   help="skip the held-out pairs and questions before and after")
    p.set_defaults(handler=lambda args: _run(args, hooks))
