"""The command line's contract, as a table: for every subcommand, a bad input gives exit
status 2 and one line on stderr that names what was wrong and where (the file, the line,
the field or the option), never a traceback.

Each row is ``(subcommand, what is wrong, argv, fragments of the message)``. The argv and
the fragments may name these things, made in the test's temporary folder:

- ``{tmp}``: the folder itself; ``{file}``: a plain file (where a folder is expected);
- ``{data}``: a small training file (8 conversations of the tiny preset);
- ``{locked}``: ``locked.jsonl``/``locked.yaml`` there, which cannot be read: the tests run
  as root, where ``chmod 000`` stops nothing, so opening a file whose name starts with
  ``locked`` raises ``PermissionError`` (``open`` and ``io.open`` monkeypatched);
- ``{other}``: a LoRA adapter of another architecture (a random Llama of hidden size 64:
  the tiny preset's is 192), made with PEFT; ``{gpt2}``: one of a random GPT-2 (other
  layer names); ``{retargeted}``: the shipped adapter whose ``adapter_config.json`` names
  GPT-2's modules.

A row's ``patch`` simulates what a test cannot make for real: a full disk while saving
(``OSError(ENOSPC)`` from the write) and an unreadable file. Rows run in this process
(``cli.main``): an exception that escapes it fails the test, as a traceback would; one row
also runs the console command, to see its real stderr.
"""

from __future__ import annotations

import builtins
import errno
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import pytest
from helpers import small_train_file

from ift_tutorial import cli
from ift_tutorial.paths import DATA_DIR

ADAPTER = DATA_DIR / "adapters" / "tiny-sft"
#: A tiny training run: one step, no evaluation.
TINY_RUN = ["--no-eval", "--set", "training.max_steps=1", "--set", "data.train={data}"]
DISK_FULL = "the disk is full"
#: A GRPO run from the shipped adapter into the test's folder.
GRPO = ["grpo", "--adapter", str(ADAPTER), "--output-dir", "{tmp}/run"]
#: A DPO run from the shipped adapter into the test's folder.
DPO = ["dpo", "--adapter", str(ADAPTER), "--output-dir", "{tmp}/run"]


class Case(NamedTuple):
    command: str
    wrong: str
    argv: list[str]
    fragments: list[str]
    patch: str | None = None


def _cases() -> list[Case]:
    C = Case
    return [
        # --- train --------------------------------------------------------------------
        C("train", "missing config", ["train", "--config", "{tmp}/nope.yaml", "--output-dir", "{tmp}/run"],
          ["nope.yaml", "not found"]),
        C("train", "unreadable config", ["train", "--config", "{locked}.yaml", "--output-dir", "{tmp}/run"],
          ["locked.yaml", "permission denied"], "unreadable"),
        C("train", "unknown --set key", ["train", "--output-dir", "{tmp}/run", "--set", "training.bogus=1"],
          ["section 'training'", "bogus"]),
        C("train", "string for a number", ["train", "--output-dir", "{tmp}/run", "--set", "training.max_steps=many"],
          ["max_steps must be a number", "'many'"]),
        C("train", "--set without =", ["train", "--output-dir", "{tmp}/run", "--set", "training.max_steps"],
          ["override 'training.max_steps'", "expected KEY=VALUE"]),
        C("train", "zero steps", ["train", "--output-dir", "{tmp}/run", "--set", "training.max_steps=0"],
          ["section 'training'", "max_steps must be at least 1, got 0"]),
        C("train", "negative learning rate", ["train", "--output-dir", "{tmp}/run", "--set", "training.learning_rate=-1e-3"],
          ["learning_rate must be greater than 0"]),
        C("train", "wrong --resume", ["train", "--output-dir", "{tmp}/run", "--resume", "sometimes"],
          ["--resume sometimes", "expected auto, never or a checkpoint folder"]),
        C("train", "--resume of an incomplete checkpoint", ["train", "--output-dir", "{tmp}/run", "--resume", "{tmp}"],
          ["--resume {tmp}", "not a complete checkpoint", "COMPLETE"]),
        C("train", "--output-dir is a file", ["train", "--output-dir", "{file}", *TINY_RUN],
          ["--output-dir {file}", "a file, not a folder"]),
        C("train", "--output-dir under a file", ["train", "--output-dir", "{file}/run", *TINY_RUN],
          ["--output-dir {file}/run", "{file} is a file"]),
        C("train", "missing data file", ["train", "--output-dir", "{tmp}/run", "--no-eval", "--set", "data.train={tmp}/gone.jsonl"],
          ["gone.jsonl", "file not found"]),
        C("train", "data file is a folder", ["train", "--output-dir", "{tmp}/run", "--no-eval", "--set", "data.train={tmp}/folder.jsonl"],
          ["folder.jsonl", "not a file"]),
        C("train", "disk full saving the adapter", ["train", "--output-dir", "{tmp}/run", *TINY_RUN],
          ["--output-dir {tmp}/run", DISK_FULL], "disk_full_adapter"),
        C("train", "disk full saving metrics.json", ["train", "--output-dir", "{tmp}/run", *TINY_RUN],
          ["--output-dir {tmp}/run", DISK_FULL, "metrics.json"], "disk_full_metrics"),
        # --- grpo ---------------------------------------------------------------------
        C("grpo", "missing adapter", ["grpo", "--adapter", "{tmp}/nowhere", "--output-dir", "{tmp}/run"],
          ["--adapter {tmp}/nowhere", "no such folder"]),
        C("grpo", "adapter folder without adapter_config.json",
          ["grpo", "--adapter", "{tmp}", "--output-dir", "{tmp}/run"], ["--adapter {tmp}", "no adapter_config.json"]),
        C("grpo", "empty prompt", [*GRPO, "--set", "grpo.train={tmp}/empty_prompt.jsonl"],
          ["empty_prompt.jsonl, line 2, field 'messages[0].content'", "the prompt is empty"]),
        C("grpo", "empty reference answer", [*GRPO, "--set", "grpo.train={tmp}/empty_answer.jsonl"],
          ["empty_answer.jsonl, line 1, field 'messages[1].content'", "reference answer is empty"]),
        C("grpo", "bad message in the reward data", [*GRPO, "--set", "grpo.train={tmp}/bad.jsonl",
                                                     "--set", "grpo.task=null"],
          ["bad.jsonl, line 2, field 'messages[1]'", "role (system/user/assistant)"]),
        C("grpo", "no prompt of the task", [*GRPO, "--set", "grpo.task=poetry"],
          ["train.jsonl", "no row of task 'poetry'", "addition"]),
        C("grpo", "missing prompt file", [*GRPO, "--set", "grpo.train={tmp}/gone.jsonl"],
          ["gone.jsonl", "no such file"]),
        C("grpo", "unknown reward", [*GRPO, "--set", "grpo.reward=bleu"],
          ["grpo.reward", "'bleu' is not a verifiable reward", "exact_match"]),
        C("grpo", "one answer per prompt", [*GRPO, "--set", "grpo.num_generations=1"],
          ["grpo.num_generations must be at least 2"]),
        C("grpo", "batch not whole groups", [*GRPO, "--set", "grpo.per_device_train_batch_size=12",
                                             "--set", "grpo.num_generations=8"],
          ["grpo.per_device_train_batch_size (12)", "multiple of grpo.num_generations (8)"]),
        C("grpo", "wrong --resume", [*GRPO, "--resume", "sometimes"],
          ["--resume sometimes", "expected auto, never or a checkpoint folder"]),
        C("grpo", "--output-dir is a file", ["grpo", "--adapter", str(ADAPTER), "--output-dir", "{file}"],
          ["--output-dir {file}", "a file, not a folder"]),
        # --- dpo ----------------------------------------------------------------------
        C("dpo", "missing adapter", ["dpo", "--adapter", "{tmp}/nowhere", "--output-dir", "{tmp}/run"],
          ["--adapter {tmp}/nowhere", "no such folder"]),
        C("dpo", "same chosen and rejected", [*DPO, "--set", "dpo.train={tmp}/same_pair.jsonl"],
          ["same_pair.jsonl, line 1, field 'rejected'", "the same answer"]),
        C("dpo", "empty prompt", [*DPO, "--set", "dpo.train={tmp}/empty_pair_prompt.jsonl"],
          ["empty_pair_prompt.jsonl, line 1, field 'prompt'", "empty"]),
        C("grpo", "disk full saving metrics.json", [*GRPO, "--no-eval", "--set", "grpo.max_steps=1"],
          ["--output-dir {tmp}/run", DISK_FULL, "metrics.json"], "disk_full_metrics"),
        # --- evaluate -----------------------------------------------------------------
        C("evaluate", "unknown --set key", ["evaluate", "--set", "model.bogus=1"], ["section 'model'", "bogus"]),
        C("evaluate", "zero examples", ["evaluate", "--set", "data.max_eval_examples=0"],
          ["max_eval_examples must be at least 1"]),
        C("evaluate", "missing adapter folder", ["evaluate", "--adapter", "{tmp}/nowhere"],
          ["nowhere", "not a PEFT adapter folder"]),
        C("evaluate", "adapter folder without adapter_config.json", ["evaluate", "--adapter", "{tmp}"],
          ["{tmp}", "no adapter_config.json"]),
        C("evaluate", "adapter of another hidden size", ["evaluate", "--adapter", "{other}"],
          ["other-arch", "does not fit the base model", "size mismatch"]),
        C("evaluate", "adapter of other layers", ["evaluate", "--adapter", "{retargeted}"],
          ["retargeted", "does not fit the base model", "c_attn"]),
        C("evaluate", "--output under a file", ["evaluate", "--output", "{file}/report.json"],
          ["--output {file}/report.json", "{file} is a file"]),
        C("evaluate", "--output is a folder", ["evaluate", "--output", "{tmp}"],
          ["--output {tmp}", "a folder, not a file"]),
        C("evaluate", "disk full writing --output", ["evaluate", "--output", "{tmp}/report.json"],
          ["--output {tmp}/report.json", DISK_FULL], "disk_full_report"),
        # --- generate and chat --------------------------------------------------------
        C("generate", "zero --max-new-tokens", ["generate", "--prompt", "Hi", "--max-new-tokens", "0"],
          ["--max-new-tokens", "must be at least 1, got 0"]),
        C("generate", "negative --max-new-tokens", ["generate", "--prompt", "Hi", "--max-new-tokens", "-5"],
          ["--max-new-tokens", "got -5"]),
        C("generate", "text for --max-new-tokens", ["generate", "--prompt", "Hi", "--max-new-tokens", "many"],
          ["--max-new-tokens", "expected a whole number"]),
        C("generate", "--set without =", ["generate", "--prompt", "Hi", "--set", "lora.r"], ["override 'lora.r'"]),
        C("generate", "string for a number", ["generate", "--prompt", "Hi", "--set", "model.max_length=long"],
          ["max_length must be a number"]),
        C("generate", "missing adapter folder", ["generate", "--prompt", "Hi", "--adapter", "{tmp}/nowhere"],
          ["nowhere", "not a PEFT adapter folder"]),
        C("generate", "adapter of another hidden size", ["generate", "--prompt", "Hi", "--adapter", "{other}"],
          ["other-arch", "does not fit the base model", "size mismatch"]),
        C("chat", "zero --max-new-tokens", ["chat", "--max-new-tokens", "0"], ["--max-new-tokens", "at least 1"]),
        C("chat", "adapter folder without adapter_config.json", ["chat", "--adapter", "{tmp}"],
          ["no adapter_config.json"]),
        C("chat", "adapter of other layers", ["chat", "--adapter", "{retargeted}"],
          ["retargeted", "does not fit the base model"]),
        # --- merge --------------------------------------------------------------------
        C("merge", "wrong --dtype", ["merge", "--adapter", str(ADAPTER), "--output-dir", "{tmp}/m", "--dtype", "int8"],
          ["--dtype", "'int8'", "bf16"]),
        C("merge", "missing adapter folder", ["merge", "--adapter", "{tmp}/nowhere", "--output-dir", "{tmp}/m"],
          ["nowhere", "not a PEFT adapter folder"]),
        C("merge", "adapter folder without adapter_config.json", ["merge", "--adapter", "{tmp}", "--output-dir", "{tmp}/m"],
          ["no adapter_config.json"]),
        C("merge", "adapter of another hidden size", ["merge", "--adapter", "{other}", "--output-dir", "{tmp}/m"],
          ["other-arch", "made for another base model", "q_proj.weight: base (192, 192), adapter (64, 64)"]),
        C("merge", "adapter of another architecture", ["merge", "--adapter", "{gpt2}", "--output-dir", "{tmp}/m"],
          ["gpt2-arch", "not in the base checkpoint", "c_attn"]),
        C("merge", "--output-dir is a file", ["merge", "--adapter", str(ADAPTER), "--output-dir", "{file}"],
          ["--output-dir {file}", "a file, not a folder"]),
        C("merge", "unknown --set key", ["merge", "--adapter", str(ADAPTER), "--output-dir", "{tmp}/m", "--set", "lora.rank=8"],
          ["section 'lora'", "rank"]),
        C("merge", "disk full saving the weights", ["merge", "--adapter", str(ADAPTER), "--output-dir", "{tmp}/m"],
          ["--output-dir {tmp}/m", DISK_FULL, "model.safetensors"], "disk_full_merge"),
        # --- export -------------------------------------------------------------------
        C("export", "unknown --quant", ["export", "--adapter", str(ADAPTER), "--output-dir", "{tmp}/e",
                                        "--quant", "q3_x"], ["--quant", "unknown quantisation 'q3_x'"]),
        C("export", "missing adapter folder", ["export", "--adapter", "{tmp}/nowhere", "--output-dir", "{tmp}/e"],
          ["nowhere", "not a PEFT adapter folder"]),
        C("export", "adapter of another hidden size", ["export", "--adapter", "{other}", "--output-dir", "{tmp}/e"],
          ["other-arch", "made for another base model"]),
        C("export", "--output-dir is a file", ["export", "--adapter", str(ADAPTER), "--output-dir", "{file}"],
          ["--output-dir {file}", "a file, not a folder"]),
        # --- check-data ---------------------------------------------------------------
        C("check-data", "missing file", ["check-data", "{tmp}/gone.jsonl"], ["gone.jsonl", "file not found"]),
        C("check-data", "a folder for the file", ["check-data", "{tmp}"], ["not a file"]),
        C("check-data", "unreadable file", ["check-data", "{locked}.jsonl"], ["locked.jsonl", "permission denied"],
          "unreadable"),
        C("check-data", "bad record", ["check-data", "{tmp}/bad.jsonl"],
          ["bad.jsonl, line 2, field 'messages[1].role'", "unknown role 'bot'"]),
        C("check-data", "wrong --format", ["check-data", "{data}", "--format", "yaml"], ["--format", "'yaml'"]),
        C("check-data", "--set without --config", ["check-data", "{data}", "--set", "model.max_length=8"],
          ["--set changes a config", "--config"]),
        C("check-data", "unknown --set key", ["check-data", "{data}", "--config", "tiny", "--set", "model.bogus=1"],
          ["bogus"]),
        C("check-data", "--set without =", ["check-data", "{data}", "--config", "tiny", "--set", "model"],
          ["override 'model'", "KEY=VALUE"]),
        # --- pretrain (every row stops before the 13-minute pretraining) --------------
        C("pretrain", "missing config", ["pretrain", "--config", "{tmp}/nope.yaml", "--output-dir", "{tmp}/p"],
          ["nope.yaml", "not found"]),
        C("pretrain", "unreadable config", ["pretrain", "--config", "{locked}.yaml", "--output-dir", "{tmp}/p"],
          ["locked.yaml", "permission denied"], "unreadable"),
        C("pretrain", "unknown --set key", ["pretrain", "--output-dir", "{tmp}/p", "--set", "world.n_planets=3"],
          ["section 'world'", "n_planets"]),
        C("pretrain", "string for a number", ["pretrain", "--output-dir", "{tmp}/p", "--set", "training.max_steps=abc"],
          ["training.max_steps must be a number", "'abc'"]),
        C("pretrain", "zero steps", ["pretrain", "--output-dir", "{tmp}/p", "--set", "training.max_steps=0"],
          ["training.max_steps must be at least 1"]),
        C("pretrain", "a key the tokenizer sets", ["pretrain", "--output-dir", "{tmp}/p", "--set", "model.vocab_size=10"],
          ["section 'model'", "vocab_size", "tokenizer"]),
        C("pretrain", "--set without =", ["pretrain", "--output-dir", "{tmp}/p", "--set", "world"],
          ["override 'world'", "KEY=VALUE"]),
        C("pretrain", "--output-dir is a file", ["pretrain", "--output-dir", "{file}"],
          ["--output-dir {file}", "a file, not a folder"]),
        C("pretrain", "disk full while saving", ["pretrain", "--output-dir", "{tmp}/p"],
          ["--output-dir {tmp}/p", DISK_FULL], "disk_full_pretrain"),
        # --- plan-memory --------------------------------------------------------------
        C("plan-memory", "wrong --gpu", ["plan-memory", "--gpu", "v100"], ["--gpu", "unknown GPU 'v100'", "t4"]),
        C("plan-memory", "wrong --strategy", ["plan-memory", "--strategy", "tensor"], ["--strategy", "'tensor'", "zero3"]),
        C("plan-memory", "zero --num-gpus", ["plan-memory", "--num-gpus", "0"], ["--num-gpus", "at least 1, got 0"]),
        C("plan-memory", "negative --seq-len", ["plan-memory", "--seq-len", "-1"], ["--seq-len", "got -1"]),
        C("plan-memory", "zero --batch-size", ["plan-memory", "--batch-size", "0"], ["--batch-size", "got 0"]),
        C("plan-memory", "wrong --optim", ["plan-memory", "--optim", "sgd_turbo"], ["optimizer 'sgd_turbo'"]),
        C("plan-memory", "zero LoRA rank", ["plan-memory", "--set", "lora.r=0"], ["section 'lora'", "r must be at least 1"]),
        C("plan-memory", "missing config", ["plan-memory", "--config", "{tmp}/nope.yaml"], ["nope.yaml", "not found"]),
        # --- dry-run ------------------------------------------------------------------
        C("dry-run", "zero --layers", ["dry-run", "--config", "tiny", "--layers", "0"], ["--layers", "at least 1, got 0"]),
        C("dry-run", "zero --steps", ["dry-run", "--config", "tiny", "--steps", "0"], ["--steps", "at least 1, got 0"]),
        C("dry-run", "zero --seq-len", ["dry-run", "--config", "tiny", "--seq-len", "0"], ["--seq-len", "got 0"]),
        C("dry-run", "negative --batch-size", ["dry-run", "--config", "tiny", "--batch-size", "-2"], ["--batch-size", "got -2"]),
        C("dry-run", "unknown --set key", ["dry-run", "--config", "tiny", "--set", "training.bogus=1"], ["bogus"]),
        C("dry-run", "config is a folder", ["dry-run", "--config", "{tmp}"], ["{tmp}", "not found"]),
        # --- score-ifeval -------------------------------------------------------------
        C("score-ifeval", "no --input", ["score-ifeval"], ["--input", "required"]),
        C("score-ifeval", "missing file", ["score-ifeval", "--input", "{tmp}/gone.jsonl"], ["gone.jsonl", "no such file"]),
        C("score-ifeval", "a folder for the file", ["score-ifeval", "--input", "{tmp}"], ["not a file"]),
        C("score-ifeval", "unreadable file", ["score-ifeval", "--input", "{locked}.jsonl"],
          ["locked.jsonl", "permission denied"], "unreadable"),
        C("score-ifeval", "bad line", ["score-ifeval", "--input", "{tmp}/bad.jsonl"], ["bad.jsonl, line 1"]),
    ]


CASES = _cases()


# --- the things the rows name ----------------------------------------------------------------


def _save_random_adapter(folder: Path, model, targets: list[str], **lora) -> Path:
    from peft import LoraConfig, get_peft_model

    get_peft_model(model, LoraConfig(r=4, target_modules=targets, **lora)).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def adapters(tmp_path_factory) -> dict[str, Path]:
    """Adapters that do not match the tiny preset's base (see the module's docstring)."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    root = tmp_path_factory.mktemp("adapters")
    torch.manual_seed(0)
    llama = LlamaForCausalLM(LlamaConfig(vocab_size=2048, hidden_size=64, intermediate_size=128,
                                         num_hidden_layers=2, num_attention_heads=2,
                                         num_key_value_heads=2))
    gpt2 = GPT2LMHeadModel(GPT2Config(vocab_size=2048, n_embd=32, n_layer=1, n_head=2, n_positions=64,
                                      bos_token_id=0, eos_token_id=0))
    retargeted = root / "retargeted"
    shutil.copytree(ADAPTER, retargeted)
    config = json.loads((retargeted / "adapter_config.json").read_text(encoding="utf-8"))
    config["target_modules"] = ["c_attn", "c_proj"]  # GPT-2's names: the tiny Llama has none
    (retargeted / "adapter_config.json").write_text(json.dumps(config), encoding="utf-8")
    return {
        "other": _save_random_adapter(root / "other-arch", llama, ["q_proj", "v_proj"]),
        "gpt2": _save_random_adapter(root / "gpt2-arch", gpt2, ["c_attn"], fan_in_fan_out=True),
        "retargeted": retargeted,
    }


def _fill(text: str, names: dict[str, str]) -> str:
    for key, value in names.items():
        text = text.replace("{" + key + "}", value)
    return text


def _apply_patch(patch: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Simulate what a test cannot make for real (see the module's docstring)."""
    full = OSError(errno.ENOSPC, "No space left on device")  # as a failing write says it: no name
    if patch == "unreadable":
        real_open = builtins.open

        def refusing_open(file, *args, **kwargs):
            if isinstance(file, (str, Path)) and Path(file).name.startswith("locked"):
                raise PermissionError(errno.EACCES, "Permission denied", str(file))
            return real_open(file, *args, **kwargs)

        monkeypatch.setattr(builtins, "open", refusing_open)
        monkeypatch.setattr(io, "open", refusing_open)  # what Path.open calls
    elif patch == "disk_full_adapter":
        import peft.peft_model

        monkeypatch.setattr(peft.peft_model, "safe_save_file", _raiser(full))
    elif patch in ("disk_full_metrics", "disk_full_report"):
        name = "metrics.json" if patch == "disk_full_metrics" else "report.json"
        real_write_text = Path.write_text

        def write_text(self, *args, **kwargs):
            if self.name == name:
                raise OSError(errno.ENOSPC, "No space left on device", str(self))
            return real_write_text(self, *args, **kwargs)

        monkeypatch.setattr(Path, "write_text", write_text)
        if patch == "disk_full_report":  # only the write matters here: no model, no evaluation
            import ift_tutorial.evaluation.runner as runner

            monkeypatch.setattr(runner, "load_for_inference", lambda config, adapter: (None, None))
            monkeypatch.setattr(runner, "evaluate_model", lambda model, tok, config: {"exact_match": 0.5})
    elif patch == "disk_full_merge":
        import safetensors.torch

        def save_file(tensors, filename, metadata=None):
            raise OSError(errno.ENOSPC, "No space left on device", filename)

        monkeypatch.setattr(safetensors.torch, "save_file", save_file)
    elif patch == "disk_full_pretrain":  # the CLI's mapping only: pretraining itself takes minutes
        import ift_tutorial.tinyworld.pretrain as pretrain

        monkeypatch.setattr(pretrain, "pretrain", _raiser(full))
    else:
        assert patch is None, patch


def _raiser(err: BaseException):
    def raise_it(*args, **kwargs):
        raise err

    return raise_it


def _message_lines(stderr: str) -> list[str]:
    """stderr without argparse's usage (``usage: ...`` and its indented continuation lines)."""
    lines, in_usage = [], False
    for line in stderr.splitlines():
        if line.startswith("usage:"):
            in_usage = True
        elif in_usage and line.startswith(" "):
            continue
        elif line.strip():
            in_usage = False
            lines.append(line)
    return lines


# --- the table -----------------------------------------------------------------------------


def test_the_table_covers_every_subcommand():
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, cli.argparse._SubParsersAction))
    assert {c.command for c in CASES} == set(sub.choices)


@pytest.mark.parametrize("case", CASES, ids=[f"{c.command}: {c.wrong}" for c in CASES])
def test_a_bad_input_is_one_line_and_status_2(case, tmp_path, monkeypatch, capsys, request):
    names = {"tmp": str(tmp_path), "file": str(tmp_path / "a-file"), "locked": str(tmp_path / "locked")}
    (tmp_path / "a-file").write_text("not a folder\n", encoding="utf-8")
    (tmp_path / "folder.jsonl").mkdir()
    for suffix in (".jsonl", ".yaml"):
        (tmp_path / f"locked{suffix}").write_text("", encoding="utf-8")
    user, bot = {"role": "user", "content": "Hi"}, {"role": "bot", "content": "Hello"}
    answer = {"role": "assistant", "content": "17"}
    (tmp_path / "empty_prompt.jsonl").write_text("\n".join(json.dumps({"messages": m}) for m in (
        [user, answer], [{"role": "user", "content": "  "}, answer])) + "\n", encoding="utf-8")
    (tmp_path / "empty_answer.jsonl").write_text(json.dumps(
        {"messages": [user, {"role": "assistant", "content": ""}]}) + "\n", encoding="utf-8")
    (tmp_path / "bad.jsonl").write_text(
        json.dumps({"messages": [user, {"role": "assistant", "content": "Hello"}]}) + "\n"
        + json.dumps({"messages": [user, bot]}) + "\n", encoding="utf-8")
    pair = {"prompt": "What is 7 + 5?", "chosen": "12", "rejected": "12"}
    (tmp_path / "same_pair.jsonl").write_text(json.dumps(pair) + "\n", encoding="utf-8")
    (tmp_path / "empty_pair_prompt.jsonl").write_text(
        json.dumps({**pair, "prompt": "", "rejected": "13"}) + "\n", encoding="utf-8")
    if "{data}" in " ".join(case.argv):
        names["data"] = str(small_train_file(tmp_path / "train.jsonl", 8))
    if case.command == "score-ifeval":
        (tmp_path / "bad.jsonl").write_text("{not json\n", encoding="utf-8")
    for key in ("other", "gpt2", "retargeted"):
        if "{" + key + "}" in " ".join(case.argv):
            names[key] = str(request.getfixturevalue("adapters")[key])
    argv = [_fill(a, names) for a in case.argv]
    _apply_patch(case.patch, monkeypatch)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # chat: nothing typed

    status = cli.main(argv)  # an exception escaping it is the traceback this contract rules out

    err = capsys.readouterr().err
    assert status == 2, err
    assert "Traceback" not in err, err
    lines = _message_lines(err)
    assert len(lines) == 1, err
    assert "error: " in lines[0]
    for fragment in case.fragments:
        assert _fill(fragment, names) in lines[0], lines[0]


def test_the_console_command_prints_one_line_without_a_traceback(tmp_path):
    """The real process, for one row: what a shell user sees on stderr."""
    run = subprocess.run([sys.executable, "-m", "ift_tutorial.cli", "merge", "--adapter", str(ADAPTER),
                          "--output-dir", str(tmp_path / "m"), "--dtype", "int8"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert _message_lines(run.stderr) == [
        "ift-tutorial merge: error: argument --dtype: invalid choice 'int8' (choose from auto, "
        "bf16, bfloat16, fp16, float16, fp32, float32)"]
    assert not (tmp_path / "m").exists()
