"""Live parity of the GGUF export (chapter 10): does llama.cpp answer as the tuned model does?

Exports the shipped tiny adapter (``data/adapters/tiny-sft``) with ``export_model`` to f32,
f16, q8_0 and q4_k_m, then, with llama.cpp through llama-cpp-python (the ``export`` extra):

* **token ids**: every string of the project's corpora (the tiny world's tokenizer corpus,
  regenerated from its config, and every text of ``data/*/*.jsonl``), and each held-out
  question rendered through the chat template, tokenised by llama.cpp and by the Hugging Face
  tokenizer: the ids must be equal;
* **answers**: the 180 held-out questions answered greedily through the GGUF file's own chat
  template (rendered by llama-cpp-python's Jinja formatter), until one of llama.cpp's
  end-of-generation tokens or 32 new tokens, compared with the merged model's greedy answers
  in transformers (fp32): same text and both stopped, or not. f32 and f16 must match on
  every question; q8_0 and q4_k_m report their rate, with each one's exact match.

Writes ``benchmarks/results/export_parity.json`` and ``.md`` with the library versions.
``make test-export`` runs it and fails unless f32 and f16 match on every question.

    python benchmarks/export_parity.py                # about a minute once llama.cpp is built
    python benchmarks/export_parity.py --output /tmp/parity.json --limit 20
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import platform
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEFAULT_OUTPUT = HERE / "results" / "export_parity.json"
QUANTS = ("f32", "f16", "q8_0", "q4_k_m")
MUST_MATCH = ("f32", "f16")


def corpora() -> dict[str, list[str]]:
    """The project's texts: the tokenizer's training corpus and every string in data/*/*.jsonl."""
    from ift_tutorial.tinyworld.corpus import make_corpus
    from ift_tutorial.tinyworld.pretrain import load_pretrain_config, world_from_config

    cfg = load_pretrain_config()
    out = {"tiny-world corpus": make_corpus(world_from_config(cfg), int(cfg["tokenizer"]["n_documents"]),
                                            seed=int(cfg.get("seed", 0)))}

    def strings(value) -> list[str]:
        if isinstance(value, str):
            return [value] if value else []
        if isinstance(value, dict):
            return [s for v in value.values() for s in strings(v)]
        if isinstance(value, list):
            return [s for v in value for s in strings(v)]
        return []

    for path in sorted((ROOT / "data").glob("*/*.jsonl")):
        lines = path.read_text(encoding="utf-8").splitlines()
        out[str(path.relative_to(ROOT))] = [s for ln in lines if ln.strip() for s in strings(json.loads(ln))]
    return out


def hf_answers(merged: Path, conversations: list, max_new_tokens: int) -> list:
    """The merged model's greedy answers in transformers, fp32 (the reference)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()

    from ift_tutorial.inference.generation import answer_conversations

    torch.set_num_threads(1)
    model = AutoModelForCausalLM.from_pretrained(merged, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(merged)
    return answer_conversations(model, tokenizer, conversations, max_new_tokens, batch_size=60)


def run(limit: int | None, max_new_tokens: int = 32) -> dict:
    from transformers import AutoTokenizer

    from ift_tutorial.config import load_config
    from ift_tutorial.inference.export import export_model
    from ift_tutorial.inference.gguf_live import gguf_answers, ids_parity, llama_ids, load_gguf
    from ift_tutorial.tinyworld.tasks import is_exact_match, read_tasks

    config = load_config("tiny")
    questions = read_tasks(ROOT / "data" / "tasks" / "heldout.jsonl")[:limit]
    conversations = [q["messages"][:-1] for q in questions]
    references = [q["messages"][-1]["content"] for q in questions]
    result: dict = {"questions": len(questions), "max_new_tokens": max_new_tokens, "quants": {}}
    with tempfile.TemporaryDirectory() as tmp:
        exports, seconds = {}, {}
        for quant in QUANTS:
            start = time.perf_counter()
            exports[quant] = export_model(config, ROOT / "data/adapters/tiny-sft", Path(tmp) / quant,
                                          quant=quant, keep_merged=quant == "f32")
            seconds[quant] = time.perf_counter() - start
        merged = exports["f32"].merged
        tokenizer = AutoTokenizer.from_pretrained(merged)
        start = time.perf_counter()
        reference = hf_answers(merged, conversations, max_new_tokens)
        result["hf_seconds"] = round(time.perf_counter() - start, 1)
        result["hf_exact_match"] = sum(is_exact_match(a.text, r) for a, r in zip(reference, references))
        texts = corpora()
        texts["held-out prompts, chat template"] = [
            tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True)
            for c in conversations]
        for quant in QUANTS:
            with contextlib.closing(load_gguf(exports[quant].gguf)) as llm:
                if quant == "f16":  # ids: one tokenizer, the same in every file
                    result["ids"] = {}
                    for name, strings in texts.items():
                        same, differ = ids_parity(llm, tokenizer, strings)
                        result["ids"][name] = {"texts": len(strings), "same_ids": same,
                                               "first_differing": differ[:2]}
                    result["ids_chat_prompt_example"] = llama_ids(llm, texts["held-out prompts, chat template"][0])
                start = time.perf_counter()
                live = gguf_answers(llm, conversations, max_new_tokens)
                took = time.perf_counter() - start
            answers = [tokenizer.decode(list(a.ids), skip_special_tokens=True).strip() for a in live]
            match = [a == r.text and l.stopped == r.stopped for a, l, r in zip(answers, live, reference)]
            result["quants"][quant] = {
                "bytes": exports[quant].bytes, "answers_match": sum(match),
                "exact_match": sum(is_exact_match(a, r) for a, r in zip(answers, references)),
                "stopped": sum(a.stopped for a in live), "answer_seconds": round(took, 1),
                "export_seconds": round(seconds[quant], 1),
                "differing": [{"question": c[-1]["content"], "hf": r.text, "gguf": a}
                              for c, a, r, ok in zip(conversations, answers, reference, match) if not ok]}
            result["quants"][quant]["stops"] = list(exports[quant].stops)
    return result


def versions() -> dict:
    names = ["llama_cpp_python", "gguf", "transformers", "tokenizers", "torch", "peft", "sentencepiece"]
    return {n: version(n.replace("_", "-")) for n in names}


def markdown(res: dict) -> str:
    lines = ["# Export parity (GGUF, llama.cpp) of the tiny adapter", "",
             f"Measured {res['date']} with " + ", ".join(f"{k} {v}" for k, v in res["versions"].items()) + ".",
             "", "| type | size | answers equal to transformers' | exact match |",
             "|---|---|---|---|"]
    n = res["questions"]
    for quant, q in res["quants"].items():
        lines.append(f"| {quant} | {q['bytes'] / 2**20:.2f} MiB | {q['answers_match']}/{n} | "
                     f"{q['exact_match']}/{n} |")
    lines += ["", f"transformers (fp32, merged): exact match {res['hf_exact_match']}/{n}.", "",
              "| corpus | texts | same token ids |", "|---|---|---|"]
    lines += [f"| {name} | {c['texts']} | {c['same_ids']} |" for name, c in res["ids"].items()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--limit", type=int, default=None, help="only the first N questions")
    parser.add_argument("--build-seconds", type=float, default=None,
                        help="how long llama-cpp-python took to build from source, to record")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    res = {"what": __doc__.split("\n")[0], "date": datetime.date.today().isoformat(),
           "versions": versions(), "machine": {"platform": platform.platform(), "python": platform.python_version()}}
    if args.build_seconds is not None:
        res["wheel_build_seconds"] = args.build_seconds
    res.update(run(args.limit))
    res["seconds"] = round(time.perf_counter() - start, 1)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(res, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    args.output.with_suffix(".md").write_text(markdown(res), encoding="utf-8")
    print(markdown(res))
    n = res["questions"]
    failed = [q for q in MUST_MATCH if res["quants"][q]["answers_match"] != n]
    failed += [name for name, c in res["ids"].items() if c["same_ids"] != c["texts"]]
    if failed:
        print(f"parity failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
