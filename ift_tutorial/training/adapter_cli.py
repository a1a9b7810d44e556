"""The command lines of the runs that go on training an SFT adapter: ``grpo`` and ``dpo``.

Both take the same options (``--config``, ``--set``, ``--adapter``, ``--output-dir``,
``--resume``, ``--no-eval``) and check them in the same order before anything heavy is
imported; :mod:`~ift_tutorial.training.grpo_cli` and :mod:`~ift_tutorial.training.dpo_cli`
say only what differs: the name, the texts and which run to start.

The command line's own module (:mod:`ift_tutorial.cli`) hands in how it reads ``--config``
and ``--set`` and how it checks an output folder, a ``--resume`` value and a full disk, so
that these commands say a bad input the way ``train`` does and need nothing from it.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

#: Starts a run: ``run(config, adapter, output_dir, resume=..., evaluate=...) -> metrics``.
AdapterRun = Callable[..., dict[str, Any]]


def run_adapter_command(args: argparse.Namespace, hooks: dict[str, Callable[..., Any]],
                        load_run: Callable[[], AdapterRun]) -> int:
    """Check the input, start the run that ``load_run()`` returns, print its metrics as JSON.

    Returns:
        The exit status (0); a bad input raises the error that :mod:`ift_tutorial.cli`
        turns into one line and status 2.
    """
    from .adapter_runs import check_adapter_folder

    cfg = hooks["config_of"](args)  # a bad config fails fast, before the heavy imports
    hooks["output_folder"](args.output_dir, "--output-dir")
    hooks["check_resume"](args.resume)
    check_adapter_folder(args.adapter)  # a missing adapter: one line, before any loading
    run = load_run()

    with hooks["writing_to"](args.output_dir, "--output-dir"):
        metrics = run(cfg, args.adapter, args.output_dir, resume=args.resume,
                      evaluate=not args.no_eval)
    print(json.dumps(metrics, indent=2, ensure_ascii=False, default=str))
    return 0


def add_adapter_parser(sub: argparse._SubParsersAction, name: str, *, help: str,
                       description: str, no_eval_help: str, load_run: Callable[[], AdapterRun],
                       hooks: dict[str, Callable[..., Any]]) -> None:
    """Add the subcommand ``name`` to ``sub``: a run that starts from an SFT adapter.

    Args:
        help, description: the subcommand's line in ``ift-tutorial --help`` and its own text.
        no_eval_help: what ``--no-eval`` skips.
        load_run: imports and returns the run (heavy imports: only once the input is checked).
        hooks: ``config_of(args)``, ``add_config_args(parser)``, ``output_folder(path, option)``,
            ``check_resume(value)`` and ``writing_to(path, option)`` (a context manager), as
            :mod:`ift_tutorial.cli` defines them for ``train``.
    """
    p = sub.add_parser(name, help=help, description=description)
    hooks["add_config_args"](p)
    p.add_argument("--adapter", required=True, help="the SFT adapter folder to start from")
    p.add_argument("--output-dir", required=True, help="where checkpoints, adapter and metrics go")
    p.add_argument("--resume", default="auto",
                   help="'auto' (resume from the last checkpoint in OUTPUT_DIR if any), "
                   "'never', or a checkpoint folder (default: auto)")
    p.add_argument("--no-eval", action="store_true", help=no_eval_help)
    p.set_defaults(handler=lambda args: run_adapter_command(args, hooks, load_run))
