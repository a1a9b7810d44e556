"""Live parity: the GGUF file run by llama.cpp answers as the tuned model does in transformers.

Needs the ``export`` extra (llama-cpp-python). Everything goes through what a user of the
file would use: llama.cpp's tokenizer (:func:`llama_ids`), the chat template stored in the
GGUF file rendered by llama-cpp-python's own Jinja formatter (:func:`gguf_prompt`), and
greedy decoding until one of llama.cpp's end-of-generation tokens (:func:`gguf_answers`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .export import require_llama_cpp


@dataclass(frozen=True)
class LiveAnswer:
    """One greedy answer of llama.cpp: its new token ids, and whether a stop token ended it."""

    ids: tuple[int, ...]  # without the stop token
    stopped: bool


def load_gguf(path: str | Path, n_ctx: int = 0, threads: int = 1):
    """A :class:`llama_cpp.Llama` on the CPU, quiet (``n_ctx=0``: the model's own context).

    One thread by default: for the tiny model, llama.cpp's threads spend more time waiting
    for each other than computing (40 times slower with two on a busy two-core machine).
    Close it with ``llm.close()`` (or ``contextlib.closing``) when done.
    """
    llama_cpp = require_llama_cpp("running a GGUF file")
    return llama_cpp.Llama(model_path=str(path), n_ctx=n_ctx, n_threads=threads,
                           n_threads_batch=threads, n_gpu_layers=0, verbose=False, seed=0)


def llama_ids(llm, text: str) -> list[int]:
    """llama.cpp's token ids of ``text``: special tokens parsed, no BOS added."""
    return llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)


def gguf_template(llm) -> str:
    """The chat template stored in the GGUF file (``tokenizer.chat_template``)."""
    return llm.metadata["tokenizer.chat_template"]


def _token_text(llm, token_id: int) -> str:
    return llm.detokenize([token_id], special=True).decode("utf-8", errors="replace")


def gguf_prompt(llm, messages: Sequence[dict]) -> str:
    """``messages`` rendered by the GGUF file's own template, generation prompt added, with
    llama-cpp-python's formatter (what ``create_chat_completion`` renders)."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    formatter = Jinja2ChatFormatter(gguf_template(llm), eos_token=_token_text(llm, llm.token_eos()),
                                    bos_token=_token_text(llm, llm.token_bos()))
    return formatter(messages=list(messages)).prompt


def stop_ids(llm) -> set[int]:
    """llama.cpp's end-of-generation tokens (EOS, end of turn...), as it reads them from the file."""
    import llama_cpp

    vocab = llama_cpp.llama_model_get_vocab(llm.model)
    return {i for i in range(llm.n_vocab()) if llama_cpp.llama_vocab_is_eog(vocab, i)}


def gguf_answers(llm, conversations: Sequence[Sequence[dict]],
                 max_new_tokens: int = 32) -> list[LiveAnswer]:
    """Greedy answers (top-1 token each step) to each conversation, through the GGUF's template."""
    stops = stop_ids(llm)
    out = []
    for conv in conversations:
        prompt = llama_ids(llm, gguf_prompt(llm, conv))
        ids: list[int] = []
        stopped = False
        for token in llm.generate(prompt, top_k=1, temp=0.0, repeat_penalty=1.0, reset=True):
            if token in stops:
                stopped = True
                break
            ids.append(token)
            if len(ids) >= max_new_tokens:
                break
        out.append(LiveAnswer(tuple(ids), stopped))
    return out


def ids_parity(llm, tokenizer, texts: Sequence[str]) -> tuple[int, list[str]]:
    """How many ``texts`` llama.cpp tokenises to HF's ids, and the first few that differ."""
    same, differ = 0, []
    for text in texts:
        if llama_ids(llm, text) == tokenizer(text, add_special_tokens=False)["input_ids"]:
            same += 1
        elif len(differ) < 5:
            differ.append(text)
    return same, differ
