"""Using a tuned model: answer prompts, or chat turn by turn, through the chat template.

The batched greedy decoding itself lives in :mod:`ift_tutorial.evaluation`
(``generate_responses``), so that what the book evaluates is exactly what a reader
chats with.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Sequence
from pathlib import Path

from transformers import GenerationConfig, PreTrainedTokenizerBase

from .config import ExperimentConfig
from .evaluation import generate_responses, load_for_inference


def generate_cli(
    config: ExperimentConfig,
    adapter: str | None,
    prompts: Sequence[str],
    max_new_tokens: int = 64,
) -> list[str]:
    """Answer each prompt independently; returns ``"> prompt\\nanswer"`` blocks to print."""
    answers = generate(config, prompts, adapter=adapter, max_new_tokens=max_new_tokens)
    return [f"> {p}\n{a}" for p, a in zip(prompts, answers)]


def generate(
    config: ExperimentConfig,
    prompts: Sequence[str],
    adapter: str | None = None,
    max_new_tokens: int = 64,
) -> list[str]:
    """Answer each prompt as one user turn, greedily, through the chat template.

    Args:
        config: the experiment; its base model is loaded in 4-bit as in training, and
            its ``data.system_prompt`` (if any) opens every conversation.
        prompts: user messages, answered independently.
        adapter: a PEFT adapter folder (``train`` writes ``OUTPUT_DIR/adapter``), or None
            for the base model.
        max_new_tokens: the most tokens per answer; decoding stops earlier at the
            template's end-of-turn token.

    Returns:
        One answer per prompt, in order.

    Example:
        >>> from ift_tutorial import generate, load_config
        >>> generate(load_config("tiny"), ["What is 7 + 8?"], adapter="data/adapters/tiny-sft")
        ['15']
    """
    model, tokenizer = load_for_inference(config, adapter)
    conversations = [_with_system(config, [{"role": "user", "content": p}]) for p in prompts]
    return generate_responses(model, tokenizer, conversations, max_new_tokens=max_new_tokens)


def _with_system(config: ExperimentConfig, messages: list[dict]) -> list[dict]:
    if config.data.system_prompt:
        return [{"role": "system", "content": config.data.system_prompt}, *messages]
    return messages


def chat_loop(
    config: ExperimentConfig,
    adapter: str | None = None,
    max_new_tokens: int = 64,
    input_fn: Callable[[str], str] = input,
    print_fn: Callable[[str], None] = print,
) -> int:
    """An interactive chat that keeps the conversation history; an empty line or EOF ends it.

    Returns:
        The exit status (0).
    """
    model, tokenizer = load_for_inference(config, adapter)
    history: list[dict] = _with_system(config, [])
    print_fn("chat with the model; an empty line or Ctrl-D quits")
    while True:
        try:
            text = input_fn("you> ").strip()
        except EOFError:
            break
        if not text:
            break
        history.append({"role": "user", "content": text})
        [answer] = generate_responses(model, tokenizer, [history], max_new_tokens=max_new_tokens)
        history.append({"role": "assistant", "content": answer})
        print_fn(f"model> {answer}")
    return 0


def save_generation_config(
    folder: str | os.PathLike[str], tokenizer: PreTrainedTokenizerBase,
    base: GenerationConfig | None = None,
) -> Path:
    """Write ``folder/generation_config.json`` that stops on every stop token of the template.

    ``model.generate`` reads its defaults from this file. A Qwen2.5 base model's own
    file names only ``<|endoftext|>`` as EOS, while a tuned model ends its answer with
    ``<|im_end|>``: without both ids it would keep writing. Adapter folders (``train``)
    and merged folders (``merge``) get this file.

    Args:
        folder: the model or adapter folder.
        tokenizer: the tokenizer with the chat template used in training.
        base: the base model's generation config, whose other settings are kept.

    Returns:
        The path of the file written.

    Example:
        >>> save_generation_config("runs/x/adapter", tokenizer)  # doctest: +SKIP
    """
    from .evaluation import stop_token_ids

    config = copy.deepcopy(base) if base is not None else GenerationConfig()
    stops = stop_token_ids(tokenizer)
    config.eos_token_id = stops if len(stops) > 1 else stops[0]
    config.pad_token_id = tokenizer.pad_token_id
    if tokenizer.bos_token_id is not None:
        config.bos_token_id = tokenizer.bos_token_id
    folder = Path(folder)
    config.save_pretrained(folder)
    return folder / "generation_config.json"
