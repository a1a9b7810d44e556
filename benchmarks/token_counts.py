"""Tokens per example of a preset's hub data sets, measured on their local fixtures.

The 7B presets size their runs from these counts (the arithmetic is in each preset's
comments). Run in rehearsal mode, so that the fixtures stand in for the hub data and
the preset's real chat template renders every example::

    IFT_REHEARSAL=1 HF_HUB_OFFLINE=1 python benchmarks/token_counts.py --config qwen2.5-7b
    IFT_REHEARSAL=1 HF_HUB_OFFLINE=1 python benchmarks/token_counts.py --config qwen2.5-7b \\
        --qwen-bpe PATH/qwen.tiktoken --output benchmarks/results/token_counts.json

The rehearsal's stand-in tokenizer is the tiny model's (2k tokens, trained on a made-up
world), so it splits real English and Chinese into many more tokens than a 7B model's
vocabulary does: an upper bound. With ``--qwen-bpe``, the same rendered text is also
counted with Qwen's own byte-pair merges (the ``qwen.tiktoken`` file of Qwen's tokenizer,
151,643 merges, which Qwen2.5 shares; reading it needs the ``tiktoken`` package), each
special token of the template counted as one token; without it, the Qwen counts of an
earlier run in ``--output`` are kept. For the training set it also reports what padding adds:
packing is off, so each micro-batch of ``per_device_train_batch_size`` examples is padded to
its longest one (the mean over seeded shuffles, as the Trainer shuffles).
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import statistics
import sys
from pathlib import Path

from ift_tutorial.config import load_config
from ift_tutorial.evaluation.gsm8k import read_gsm8k_set
from ift_tutorial.evaluation.ifeval.scoring import read_ifeval_set
from ift_tutorial.evaluation.perplexity import read_perplexity_set
from ift_tutorial.instructions.dataset import load_conversations
from ift_tutorial.loading import load_tokenizer
from ift_tutorial.paths import display_path
from ift_tutorial.instructions.sources import parse_sources

#: Qwen's pre-tokenizer pattern (the same in Qwen and Qwen2/2.5).
QWEN_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
                r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")


def qwen_counter(path: str, specials: list[str]):
    """A function text -> number of Qwen tokens (special tokens one each)."""
    import tiktoken

    ranks = {base64.b64decode(tok): int(rank) for tok, rank in
             (line.split() for line in Path(path).read_bytes().splitlines() if line)}
    enc = tiktoken.Encoding("qwen", pat_str=QWEN_PATTERN, mergeable_ranks=ranks, special_tokens={})
    split = re.compile("(" + "|".join(re.escape(s) for s in sorted(specials, key=len, reverse=True)) + ")")

    def count(text: str) -> int:
        return sum(1 if part in specials else len(enc.encode(part))
                   for part in split.split(text) if part)
    return count


def padded_per_example(lengths: list[int], batch: int, shuffles: int = 100, seed: int = 0) -> float:
    """Tokens per example once each micro-batch is padded to its longest example.

    Packing is off, so a micro-batch of ``batch`` examples costs ``batch`` x its longest one.
    The Trainer shuffles the examples; this is the mean over ``shuffles`` seeded orders.
    """
    import random

    rng, total = random.Random(seed), 0
    for _ in range(shuffles):
        order = rng.sample(lengths, len(lengths))
        total += sum(batch * max(order[i:i + batch]) for i in range(0, len(order), batch))
    return round(total / shuffles / len(lengths), 1)


def stats(values: list[int]) -> dict[str, float]:
    return {"n": len(values), "mean": round(statistics.mean(values), 1),
            "median": statistics.median(values), "max": max(values), "sum": sum(values)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="qwen2.5-7b")
    parser.add_argument("--qwen-bpe", help="path of Qwen's qwen.tiktoken merges file")
    parser.add_argument("--output", help="write the counts as JSON")
    args = parser.parse_args(argv)

    config = load_config(args.config)
    tokenizer = load_tokenizer(config.model)
    specials = list(tokenizer.get_added_vocab())
    real = qwen_counter(args.qwen_bpe, specials) if args.qwen_bpe else None

    def render(conv, prompt_only=False):
        return tokenizer.apply_chat_template(conv, tokenize=False, add_generation_prompt=prompt_only)

    sets = {"train": load_conversations(config.data.train, strict=False)}
    if config.data.eval_perplexity:
        sets["perplexity"] = read_perplexity_set(config.data.eval_perplexity)[0]
    prompts = {}
    for source in parse_sources(config.data.eval_ifeval, "ifeval") or []:
        prompts.setdefault("ifeval prompts", []).extend(
            [[{"role": "user", "content": p.prompt}] for p in read_ifeval_set(source)[0]])
    if config.data.eval_gsm8k:
        from ift_tutorial.evaluation.gsm8k import gsm8k_prompt

        prompts["gsm8k prompts"] = [[{"role": "user", "content": gsm8k_prompt(p.question, p.lang)}]
                                    for p in read_gsm8k_set(config.data.eval_gsm8k)[0]]
    previous = json.loads(Path(args.output).read_text(encoding="utf-8")) \
        if args.output and Path(args.output).is_file() else {}
    batch = config.training.per_device_train_batch_size
    out: dict[str, dict] = {"config": config.name, "per_device_train_batch_size": batch,
                            "template": display_path(config.model.chat_template or "(the tokenizer's)"),
                            "qwen_bpe": bool(real)}
    for name, convs in [*sets.items(), *prompts.items()]:
        texts = [render(c, prompt_only=name.endswith("prompts")) for c in convs]
        lengths = [len(tokenizer(t, add_special_tokens=False).input_ids) for t in texts]
        row = {"characters": stats([len(t) for t in texts]), "stand_in_tokens": stats(lengths)}
        if real:
            row["qwen_tokens"] = stats([real(t) for t in texts])
        elif "qwen_tokens" in previous.get(name, {}):  # counted by an earlier run that had the file
            row["qwen_tokens"] = previous[name]["qwen_tokens"]
        if name == "train":  # what a step costs: micro-batches padded to their longest example
            padded = padded_per_example(lengths, batch)
            row["stand_in_padded_per_example"] = padded
            row["padding_share"] = round(1 - statistics.mean(lengths) / padded, 3)
        out[name] = row
    out["qwen_bpe"] = bool(real) or previous.get("qwen_bpe", False)
    text = json.dumps(out, indent=2, ensure_ascii=False)
    print(text)
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
