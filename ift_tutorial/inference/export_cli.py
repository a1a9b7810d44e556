"""``ift-tutorial export``: the command line of :func:`~ift_tutorial.inference.export.export_model`.

The command line's own module (:mod:`ift_tutorial.cli`) hands in how it reads ``--config``
and ``--set``, so that this module needs nothing from it.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from ..config import ExperimentConfig
from ..formatting import size
from ..paths import display_path

DESCRIPTION = (
    "Merge the adapter into its base shard by shard, convert the merged model with "
    "llama.cpp's own converter (fetched once from the llama-cpp-python sdist on PyPI), "
    "quantise it (q8_0, q4_k_m: needs the export extra, pip install \"ift-tutorial[export]\") "
    "and write an Ollama Modelfile whose TEMPLATE and stop tokens match the chat template. "
    "A 7B model needs about 30 GB of free disk at the peak (merged fp16 plus GGUF).")


def _quant(text: str) -> str:
    from .export import QUANTS

    if text not in QUANTS:
        raise argparse.ArgumentTypeError(f"unknown quantisation {text!r} (choose from f16, "
                                         "q8_0, q4_k_m)")
    return text


def _run(args: argparse.Namespace, config_of: Callable[[argparse.Namespace], ExperimentConfig]) -> int:
    from .export import export_model

    result = export_model(config_of(args), args.adapter, args.output_dir, quant=args.quant,
                          keep_merged=args.keep_merged)
    print(f"{result.quant} GGUF: {display_path(result.gguf)} ({size(result.bytes)})")
    print(f"Ollama Modelfile: {display_path(result.modelfile)} (stops on "
          f"{', '.join(result.stops)}); serve it with: ollama create NAME -f "
          f"{display_path(result.modelfile)}")
    return 0


def add_export_parser(sub: argparse._SubParsersAction,
                      config_of: Callable[[argparse.Namespace], ExperimentConfig],
                      add_config_args: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add the ``export`` subcommand to ``sub``."""
    p = sub.add_parser("export", help="export a tuned model to GGUF (llama.cpp, Ollama) with a "
                       "Modelfile", description=DESCRIPTION)
    add_config_args(p)
    p.add_argument("--adapter", required=True, help="PEFT adapter folder")
    p.add_argument("--output-dir", required=True, help="folder for the GGUF file and Modelfile")
    p.add_argument("--quant", default="f16", type=_quant, help="f16 (default), q8_0 or q4_k_m")
    p.add_argument("--keep-merged", action="store_true",
                   help="keep the merged Hugging Face folder (OUTPUT_DIR/merged)")
    p.set_defaults(handler=lambda args: _run(args, config_of))
