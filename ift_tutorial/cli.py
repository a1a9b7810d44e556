"""The ``ift-tutorial`` command line: one subcommand per job, each driven by a YAML config.

Every subcommand takes ``--config`` (a preset name such as ``tiny`` or a YAML file)
and ``--set section.key=value`` overrides. Errors that a user can fix (a bad data
file, an unknown config key, a missing folder) are printed as one clear message
and exit with status 2, never as a traceback.
"""

from __future__ import annotations

import argparse
import errno
import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from .config import ConfigError, ExperimentConfig, load_config
from .errors import UserFacingError
from .inference.export_cli import add_export_parser
from .training import dpo_cli, grpo_cli
from .instructions.formats import FORMATS
from .paths import display_path
from .planning.sharding import STRATEGIES


# --- checking values before any work ---------------------------------------------------


def _positive_int(text: str) -> int:
    """An option's value as a whole number of at least 1 (argparse names the option)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _gpu(text: str) -> str:
    """A GPU of the planner's table (``planning.memory.GPUS``), any case; read when given,
    so that building the parser imports no torch."""
    from .planning.memory import gpu_key

    try:
        return gpu_key(text)
    except ConfigError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _merge_dtype(text: str) -> str:
    """``auto`` or a dtype name the merge knows (``planning.hardware._DTYPES``: bf16, fp16,
    fp32 and their long names); read when given, so that building the parser imports no torch."""
    from .planning.hardware import _DTYPES

    if text != "auto" and text not in _DTYPES:
        raise argparse.ArgumentTypeError(
            f"invalid choice {text!r} (choose from auto, {', '.join(_DTYPES)})")
    return text


def _output_folder(path: str, option: str) -> None:
    """Fail before any work when ``option``'s folder cannot be made: it, or a folder above
    it, is a file."""
    p = Path(path).expanduser()
    for folder in (p, *p.parents):
        if folder.exists():
            if not folder.is_dir():
                what = "it is" if folder == p else f"{folder} is"
                raise UserFacingError(f"{option} {path}: {what} a file, not a folder")
            return


def _output_file(path: str, option: str) -> None:
    """Fail before any work when ``option``'s file cannot be written: it is a folder, or its
    folder cannot be made."""
    p = Path(path).expanduser()
    if p.is_dir():
        raise UserFacingError(f"{option} {path}: it is a folder, not a file")
    for folder in p.parents:
        if folder.exists():
            if not folder.is_dir():
                raise UserFacingError(f"{option} {path}: {folder} is a file, not a folder")
            return


#: errno values of a full disk (or quota).
_DISK_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}


@contextmanager
def _writing_to(path: str | None, option: str) -> Iterator[None]:
    """A full disk while the command writes under ``path`` (``option``'s folder or file) is
    one line naming both, not a traceback; the write itself rarely knows the file's name."""
    try:
        yield
    except OSError as err:
        if err.errno not in _DISK_FULL or path is None:
            raise
        where = f" ({display_path(err.filename)})" if err.filename else ""
        raise UserFacingError(f"{option} {path}: the disk is full (no space left "
                              f"on device) while saving there{where}; free some space or choose "
                              "another folder") from None


#: What an OSError with one of these errno values says: the user's file system, not a bug.
_OS_ERRORS = {
    errno.EACCES: "permission denied", errno.EPERM: "operation not permitted",
    errno.EISDIR: "is a folder, not a file", errno.ENOTDIR: "a part of this path is not a folder",
    errno.ENOENT: "no such file or folder", errno.EEXIST: "already exists (a file?)",
    errno.EROFS: "read-only file system", errno.ENAMETOOLONG: "name too long",
    **{n: "the disk is full (no space left on device)" for n in _DISK_FULL},
}


def _os_error_message(err: OSError) -> str | None:
    """One line for an OSError the user can fix (see :data:`_OS_ERRORS`), else None."""
    if err.errno not in _OS_ERRORS:
        return None
    what = _OS_ERRORS[err.errno]
    return f"{display_path(err.filename)}: {what}" if err.filename else what


def _add_config_args(p: argparse.ArgumentParser, default: str | None = "tiny") -> None:
    p.add_argument(
        "--config",
        default=default,
        help="preset name (e.g. tiny, qwen2.5-7b) or path to a YAML config "
        + (f"(default: {default})" if default else "(default: none)"),
    )
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set training.max_steps=50 (repeatable)",
    )


def _config(args: argparse.Namespace) -> ExperimentConfig:
    return load_config(args.config, args.overrides)


def _print_json(obj: object) -> None:
    print(json.dumps(obj, indent=2, ensure_ascii=False, default=str))


# --- handlers: thin wrappers, the work lives in the concept modules --------------


def _check_resume(resume: str) -> None:
    """``--resume``: auto, never, or a complete checkpoint folder (checked before any work)."""
    if resume in ("auto", "never"):
        return
    folder = Path(resume).expanduser()
    if not folder.is_dir():
        raise UserFacingError(f"--resume {resume}: expected auto, never or a checkpoint folder; "
                              + ("that is a file" if folder.exists() else "no such folder"))
    from .training.checkpoints import check_complete

    reason = check_complete(folder)
    if reason is not None:
        raise UserFacingError(f"--resume {resume}: not a complete checkpoint: {reason}")


def _cmd_train(args: argparse.Namespace) -> int:
    cfg = _config(args)  # a bad config fails fast, before the heavy imports
    _output_folder(args.output_dir, "--output-dir")
    _check_resume(args.resume)
    from .training.trainer import train

    with _writing_to(args.output_dir, "--output-dir"):
        metrics = train(cfg, args.output_dir, resume=args.resume, evaluate=not args.no_eval)
    _print_json(metrics)
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    cfg = _config(args)
    if args.output:
        _output_file(args.output, "--output")
    from .evaluation.runner import evaluate_config

    with _writing_to(args.output, "--output"):
        report = evaluate_config(cfg, adapter=args.adapter, output=args.output)
    _print_json(report)
    return 0


def _cmd_generate(args: argparse.Namespace) -> int:
    cfg = _config(args)
    from .inference.generation import chat_loop, generate_cli
    if args.prompt:
        for line in generate_cli(cfg, adapter=args.adapter, prompts=args.prompt,
                                 max_new_tokens=args.max_new_tokens):
            print(line)
        return 0
    return chat_loop(cfg, adapter=args.adapter, max_new_tokens=args.max_new_tokens)


def _cmd_merge(args: argparse.Namespace) -> int:
    cfg = _config(args)
    _output_folder(args.output_dir, "--output-dir")
    from .inference.merging import merge_adapter

    with _writing_to(args.output_dir, "--output-dir"):
        out = merge_adapter(cfg, args.adapter, args.output_dir, dtype=args.dtype)
    print(f"merged model saved to {display_path(out)}")
    return 0


def _cmd_check_data(args: argparse.Namespace) -> int:
    if args.overrides and not args.config:
        raise ConfigError("--set changes a config: give one with --config (e.g. --config tiny)")
    from .instructions.dataset import check_data_cli

    return check_data_cli(args)


def _cmd_pretrain(args: argparse.Namespace) -> int:
    if args.output_dir:
        _output_folder(args.output_dir, "--output-dir")
    from .tinyworld.pretrain import pretrain_cli

    with _writing_to(args.output_dir, "--output-dir"):
        return pretrain_cli(args)


def _cmd_plan_memory(args: argparse.Namespace) -> int:
    from .planning.memory import plan_memory_cli

    return plan_memory_cli(args)


def _cmd_dry_run(args: argparse.Namespace) -> int:
    from .planning.dry_run import dry_run_cli

    return dry_run_cli(args)


def _cmd_score_ifeval(args: argparse.Namespace) -> int:
    from .evaluation.ifeval.scoring import score_ifeval_cli

    return score_ifeval_cli(args)


# --- parsers -------------------------------------------------------------------


class _DeprecatedAlias(argparse.Action):
    """An old spelling of an option: still works, and says which one to use instead."""

    def __init__(self, option_strings, dest, new: str, **kwargs):
        self.new = new
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"warning: {option_string} is deprecated, use {self.new} (same meaning)",
              file=sys.stderr)
        setattr(namespace, self.dest, values)


def _parser_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="QLoRA-tune a preset; writes the adapter and metrics.json",
                       description="QLoRA instruction tuning with TRL's SFTTrainer and a PEFT "
                       "LoRA adapter. Writes OUTPUT_DIR/adapter (PEFT folder), "
                       "OUTPUT_DIR/metrics.json, OUTPUT_DIR/log.json and OUTPUT_DIR/loss.png.")
    _add_config_args(p)
    p.add_argument("--output-dir", required=True, help="where checkpoints, adapter and metrics go")
    p.add_argument("--resume", default="auto",
                   help="'auto' (resume from the last checkpoint in OUTPUT_DIR if any), "
                   "'never', or a checkpoint folder (default: auto)")
    p.add_argument("--no-eval", action="store_true",
                   help="skip the before/after evaluation (exact match, IFEval, GSM8K, "
                   "answer-token perplexity)")
    p.set_defaults(handler=_cmd_train)


def _parser_evaluate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="exact match, IFEval, GSM8K and answer-token perplexity "
                       "of the base or an adapter",
                       description="The config's held-out sets: greedy exact match, IFEval's four "
                       "accuracies, GSM8K (flexible and strict) and the perplexity of the answer "
                       "tokens of held-out conversations. A hub set is read from its local "
                       "fixture when offline (HF_HUB_OFFLINE=1).")
    _add_config_args(p)
    p.add_argument("--adapter", default=None, help="PEFT adapter folder (default: base model)")
    p.add_argument("--output", default=None, help="write the report as JSON to this file")
    p.set_defaults(handler=_cmd_evaluate)


def _parser_generate(sub: argparse._SubParsersAction) -> None:
    for name in ("generate", "chat"):
        p = sub.add_parser(name, help="generate answers through the chat template"
                           + (" (interactive when no --prompt)" if name == "chat" else ""),
                           description="Greedy generation through the model's chat template. "
                           "With --prompt, answer each prompt and exit; without, chat "
                           "interactively (empty line or Ctrl-D quits).")
        _add_config_args(p)
        p.add_argument("--adapter", default=None, help="PEFT adapter folder (default: base model)")
        p.add_argument("--prompt", action="append", default=[], help="a user message (repeatable)")
        p.add_argument("--max-new-tokens", type=_positive_int, default=64)
        p.set_defaults(handler=_cmd_generate)


def _parser_merge(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("merge", help="merge an adapter into the base's 16-bit weights, shard by shard",
                       description="Read the base model's safetensors shard by shard on the CPU "
                       "(16-bit weights, not 4-bit: merging into quantised weights changes "
                       "outputs), add the LoRA update to each layer and save a standard model "
                       "folder with its tokenizer. Peak memory is about one shard; a 7B model "
                       "needs about 15 GB of local disk.")
    _add_config_args(p)
    p.add_argument("--adapter", required=True, help="PEFT adapter folder")
    p.add_argument("--output-dir", required=True, help="where the merged model is saved")
    p.add_argument("--dtype", default="auto", type=_merge_dtype,
                   help="auto (keep the base's stored dtype), bf16, fp16 or fp32")
    p.set_defaults(handler=_cmd_merge)


def _parser_check_data(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("check-data", help="validate an instruction data file",
                       description="Validate a JSONL/JSON/CSV/Parquet instruction file "
                       "(messages, Alpaca, ShareGPT or prompt/completion): exit 2 naming the "
                       "file, line, field; else report duplicates and eval-set overlap (--config).")
    p.add_argument("path", help="data file")
    p.add_argument("--format", default="auto", choices=("auto", *FORMATS),
                   help="auto, messages, alpaca, sharegpt or prompt_completion")
    _add_config_args(p, default=None)
    p.add_argument("--ignore-extra-fields", action="store_true",
                   help="accept fields the format does not use (counted in the report), "
                   "as training does; by default they are an error, to catch typos")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(handler=_cmd_check_data)


def _parser_pretrain(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pretrain", help="rebuild the tiny preset (corpus, tokenizer, weights)",
                       description="Generate the bilingual corpus, train the tokenizer and "
                       "pretrain the tiny Llama preset from scratch on the CPU.")
    p.add_argument("--config", default="pretrain-tiny",
                   help="pretraining config (default: configs/pretrain-tiny.yaml)")
    p.add_argument("--output-dir", default=None, help="default: data/tiny-llama")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.set_defaults(handler=_cmd_pretrain)


def _parser_plan_memory(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plan-memory", help="estimate peak GPU memory of a QLoRA run",
                       description="Estimate peak GPU memory by component for a preset's "
                       "QLoRA run and say which GPUs it fits.")
    _add_config_args(p)
    p.add_argument("--gpu", default="t4", type=_gpu, help="GPU to check the fit against (t4, "
                   "l4, a100-40gb, a100-80gb, h100)")
    p.add_argument("--seq-len", type=_positive_int, default=None, help="default: model.max_length")
    p.add_argument("--batch-size", type=_positive_int, default=None,
                   help="default: training.per_device_train_batch_size")
    p.add_argument("--no-gradient-checkpointing", action="store_true")
    p.add_argument("--optim", default=None, help="default: the config's optimizer")
    p.add_argument("--strategy", default="single", choices=STRATEGIES,
                   help="single, ddp, zero1, zero2, zero3, fsdp (FSDP1) or fsdp2 "
                   "(per-GPU estimate)")
    p.add_argument("--num-gpus", type=_positive_int, default=1)
    p.add_argument("--json", action="store_true", help="print components, total_gb and fits")
    p.set_defaults(handler=_cmd_plan_memory)


def _parser_dry_run(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("dry-run", help="QLoRA steps on a preset's real architecture, random "
                       "weights, nothing downloaded",
                       description="Build a preset's architecture with random weights from "
                       "its config (no download), quantise it to 4-bit and run real QLoRA "
                       "training steps; report peak memory and tokens/s beside the planner.")
    _add_config_args(p, default="qwen2.5-7b")
    p.add_argument("--preset", dest="config", action=_DeprecatedAlias, new="--config",
                   help=argparse.SUPPRESS)
    p.add_argument("--layers", type=_positive_int, default=None,
                   help="keep only this many decoder layers (default: all on GPU, 2 on CPU)")
    p.add_argument("--steps", type=_positive_int, default=3)
    p.add_argument("--seq-len", type=_positive_int, default=None)
    p.add_argument("--batch-size", type=_positive_int, default=None)
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_cmd_dry_run)


def _parser_score_ifeval(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("score-ifeval", help="score answers to IFEval-format prompts",
                       description="Check each line's response against its verifiable "
                       "instructions (IFEval ids and kwargs, English and Chinese) and report "
                       "prompt- and instruction-level accuracy, strict and loose, with one "
                       "result per line in order. Offline; no model is loaded.")
    p.add_argument("--input", required=True, help="JSONL: key, prompt, instruction_id_list, "
                   "kwargs, response (lang optional)")
    p.add_argument("--json", action="store_true", help="print the whole report as JSON")
    p.set_defaults(handler=_cmd_score_ifeval)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ift-tutorial",
        description="Instruction fine-tuning with QLoRA: the tiny preset on a CPU, "
        "7B presets on a GPU, one code path.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_parser_train, _parser_evaluate, _parser_generate, _parser_merge,
                _parser_check_data, _parser_pretrain, _parser_plan_memory, _parser_dry_run,
                _parser_score_ifeval):
        add(sub)
    add_export_parser(sub, _config, _add_config_args)  # inference/export_cli.py
    for add in (grpo_cli.add_grpo_parser, dpo_cli.add_dpo_parser):  # training/*_cli.py
        add(sub, config_of=_config, add_config_args=_add_config_args, output_folder=_output_folder,
            check_resume=_check_resume, writing_to=_writing_to)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from .training.runlock import die_with_launcher

    die_with_launcher()  # under torchrun: die with the launcher, even if it is SIGKILLed
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as stop:  # argparse printed the usage and one error line (status 2)
        if stop.code in (0, None):  # --help
            raise
        return 2

    try:
        return int(args.handler(args) or 0)
    except UserFacingError as err:  # ConfigError, DataError...: they say what and where
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # a full disk, a folder where a file goes: not a traceback
        message = _os_error_message(err)
        if message is None and isinstance(err, FileNotFoundError):
            message = str(err)  # the package's own, with the path in the message
        if message is None:
            raise
        print(f"error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
