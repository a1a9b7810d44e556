"""Chapter 10's helpers: which adapter and type to export, and the parity tables.

The export itself, the checks and the Modelfile live in :mod:`ift_tutorial.inference`
(``export``, ``gguf_checks``, ``modelfile``, ``gguf_live``); this module only picks what the
chapter runs at each scale and lays results out as tables in the edition's language.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..config import ExperimentConfig, scale
from ..errors import UserFacingError
from ..i18n import t
from ..paths import PROJECT_ROOT
from .tables import Table, table

#: The committed result of ``make test-export`` (benchmarks/export_parity.py).
PARITY_RESULTS = "benchmarks/results/export_parity.json"

#: The tables' headers and words, in English; :func:`ift_tutorial.i18n.t` gives the Chinese
#: edition's (ift_tutorial/labels_zh.py).
_HEADERS = {"quant": "type", "bytes": "file size", "match": "answers equal to transformers'",
            "exact": "exact match", "check": "check", "result": "result",
            "corpora": "corpora", "texts": "texts", "same": "same token ids"}
_WORDS = {"equal": "equal", "tensors": "tensors ({n}, types {types})",
          "vocab": "vocabulary, merges, special tokens, chat template",
          "rounded": "not compared: {quant} rounds by design",
          "letters": "merges inside letter runs ({n} merges)",
          "known": "not needed: llama.cpp knows this pre-tokenizer"}


def _h(key: str) -> str:
    return t(_HEADERS[key])


def _w(key: str, **fields: Any) -> str:
    return t(_WORDS[key], **fields)


def chapter_adapter(config: ExperimentConfig) -> Path:
    """The shipped tiny adapter, or chapter 7's run of a 7B preset (a clear error if missing)."""
    from ..paths import resolve_path
    from .colab import find_run_adapter

    if config.name == "tiny":
        return resolve_path("data/adapters/tiny-sft")
    return find_run_adapter(f"ch07-{config.name}", config=config)


def export_quant(config: ExperimentConfig) -> str:
    """f16 for the tiny model (compared tensor by tensor); q4_k_m at 7B when llama.cpp is
    installed (the type people download), else f16: a rehearsal runs through conversion."""
    if scale(config) == "tiny":
        return "f16"
    return "q4_k_m" if has_llama_cpp() else "f16"


def has_llama_cpp() -> bool:
    """Whether llama-cpp-python (the ``export`` extra) is installed."""
    try:
        import llama_cpp
    except ImportError:
        return False
    return llama_cpp is not None


def static_parity(result, tokenizer) -> tuple[Table, bool]:
    """The static checks of an export as a table, and whether all of them passed.

    Tensors are compared for an f16/f32 file whose merged folder was kept. The merges'
    letter-run property is checked for the project's own tokenizer (registered by its hash,
    :data:`~ift_tutorial.inference.converter.PROJECT_PRE_TOKENIZERS`); a hub tokenizer's
    pre-tokenizer is one llama.cpp implements.
    """
    from ..inference.converter import PROJECT_PRE_TOKENIZERS, pre_tokenizer_hash
    from ..inference.gguf_checks import (corpus_alphabet, merges_outside_letter_runs,
                                         tensor_mismatches, vocab_mismatches)

    rows, ok = [], True
    if result.merged is not None and result.quant in ("f16", "f32"):
        report = tensor_mismatches(result.gguf, result.merged)
        types = ", ".join(f"{k} {v}" for k, v in sorted(report.types.items()))
        rows.append({"check": _w("tensors", n=report.compared, types=types),
                     "result": _w("equal") if not report.problems else report.problems[0]})
        ok = ok and not report.problems
    else:
        rows.append({"check": _w("tensors", n="–", types=result.quant),
                     "result": _w("rounded", quant=result.quant)})
    problems = vocab_mismatches(result.gguf, tokenizer)
    rows.append({"check": _w("vocab"), "result": _w("equal") if not problems else problems[0]})
    ok = ok and not problems
    if pre_tokenizer_hash(tokenizer) in PROJECT_PRE_TOKENIZERS:
        bad = merges_outside_letter_runs(tokenizer, corpus_alphabet())
        n = len(json.loads(tokenizer.backend_tokenizer.to_str())["model"]["merges"])
        rows.append({"check": _w("letters", n=n), "result": _w("equal") if not bad else bad[0]})
        ok = ok and not bad
    else:
        rows.append({"check": _w("letters", n="–"), "result": _w("known")})
    return table(rows, columns={"check": _h("check"), "result": _h("result")}), ok


def read_parity_results(path: str | Path | None = None) -> dict[str, Any]:
    """The committed live-parity results (``benchmarks/results/export_parity.json``)."""
    if path is None:
        if PROJECT_ROOT is None:
            raise UserFacingError(f"{PARITY_RESULTS} is part of the repository, not of the "
                                  "installed package: run the chapter from a clone")
        path = PROJECT_ROOT / PARITY_RESULTS
    return json.loads(Path(path).read_text(encoding="utf-8"))


def parity_table(results: dict[str, Any]) -> Table:
    """Per GGUF type: file size, answers equal to transformers' and exact match."""
    n = results["questions"]
    rows = [{"quant": quant, "bytes": q["bytes"],
             "match": f"{q['answers_match']}/{n} ({round(100 * q['answers_match'] / n)} %)",
             "exact": q["exact_match"] / n} for quant, q in results["quants"].items()]
    return table(rows, columns={k: _h(k) for k in ("quant", "bytes", "match", "exact")},
                 styles={"bytes": "bytes", "exact": "percent"})


def ids_summary(results: dict[str, Any]) -> tuple[int, int, int]:
    """``(corpora, texts, texts with the same ids)`` of the committed token-id comparison."""
    ids = results["ids"].values()
    return len(results["ids"]), sum(c["texts"] for c in ids), sum(c["same_ids"] for c in ids)


# --- running the tuned model: stops, and llama.cpp against transformers ------------------


def _merged_model(merged: Path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # "Loading weights" is no news on a page

    model = AutoModelForCausalLM.from_pretrained(merged, dtype=torch.float32)
    return model, AutoTokenizer.from_pretrained(merged)


def with_and_without_stop(merged: Path, conversation: list[dict],
                          max_new_tokens: int = 12) -> tuple[str, str]:
    """The merged model's greedy continuation, stopped at its stop tokens and not stopped
    (special tokens shown): what a runtime that lost the end-of-turn token prints."""
    import torch

    from ..inference.generation import stop_token_ids

    model, tokenizer = _merged_model(merged)
    enc = tokenizer.apply_chat_template(conversation, add_generation_prompt=True,
                                        return_tensors="pt", return_dict=True)
    out = []
    for stops in (stop_token_ids(tokenizer), [tokenizer.pad_token_id]):  # pad: never emitted
        with torch.no_grad():
            ids = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                                 eos_token_id=stops, pad_token_id=tokenizer.pad_token_id)
        out.append(tokenizer.decode(ids[0, enc["input_ids"].shape[1]:]))
    return out[0], out[1]


def live_comparison(result, conversations: list[list[dict]]) -> Table | str:
    """llama.cpp's greedy answers from the exported file beside transformers' from the merged
    folder, or a sentence saying what to install when llama-cpp-python is missing."""
    import contextlib

    if not has_llama_cpp():
        from ..inference.export import INSTALL_HINT

        return t("llama-cpp-python is not installed here, so the file is not run; "
                 "to run it: {hint}", hint=INSTALL_HINT)
    from ..inference.generation import answer_conversations
    from ..inference.gguf_live import gguf_answers, load_gguf

    from transformers import AutoTokenizer

    from ..paths import is_large_model

    tokenizer = AutoTokenizer.from_pretrained(result.merged)
    reference = [None] * len(conversations)
    if not is_large_model(str(result.merged)):  # a 7B model in fp32 fits no Colab machine
        model, tokenizer = _merged_model(result.merged)
        reference = answer_conversations(model, tokenizer, conversations, 32,
                                         batch_size=len(conversations))
    with contextlib.closing(load_gguf(result.gguf)) as llm:
        live = gguf_answers(llm, conversations)
    q = t("question")
    rows = []
    for conv, answer, ref in zip(conversations, live, reference):
        text = tokenizer.decode(list(answer.ids), skip_special_tokens=True).strip()
        rows.append({"q": conv[-1]["content"], "l": text, "h": ref.text if ref else None,
                     "same": (text == ref.text and answer.stopped == ref.stopped) if ref else None})
    return table(rows, columns={"q": q, "l": "llama.cpp", "h": "transformers", "same": "="})


def tiny_merged(folder: Path) -> Path:
    """The shipped tiny adapter merged into the tiny model (a second, 8 MB): for demonstrations
    that need a model small enough to run anywhere."""
    from ..config import load_config
    from ..inference.merging import merge_adapter

    return merge_adapter(load_config("tiny"), chapter_adapter(load_config("tiny")), folder)


def answer_margins(merged: Path, conversations: list[list[dict]],
                   max_new_tokens: int = 32) -> list[float]:
    """For each conversation, the closest call of the merged model's greedy answer: the
    smallest gap between the two largest logits over the answer's tokens (stop included).

    A small gap is a choice that a small change of the weights (rounding them) can flip.
    """
    import torch

    from ..inference.generation import stop_token_ids

    model, tokenizer = _merged_model(merged)
    stops = stop_token_ids(tokenizer)
    out = []
    for conv in conversations:
        enc = tokenizer.apply_chat_template(conv, add_generation_prompt=True,
                                            return_tensors="pt", return_dict=True)
        with torch.no_grad():
            gen = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                                 eos_token_id=stops, pad_token_id=tokenizer.pad_token_id,
                                 output_scores=True, return_dict_in_generate=True)
        top2 = [step[0].topk(2).values for step in gen.scores]  # each (2,)
        out.append(min((t[0] - t[1]).item() for t in top2))
    return out
