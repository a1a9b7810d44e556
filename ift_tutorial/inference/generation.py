"""Using a tuned model: load it, answer prompts, or chat turn by turn, through the chat template.

:func:`generate_responses` is the one decoding function of the project: batched greedy
decoding, stopped at EOS and the template's end-of-turn token. The chat command, the book
and the evaluation (:mod:`ift_tutorial.evaluation`) all answer through it, so that what
the book evaluates is exactly what a reader chats with.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import GenerationConfig, PreTrainedTokenizerBase

from ..config import ExperimentConfig
from ..loading import DECODE_CAP, disable_cpu_weight_repacking, load_model, load_tokenizer
from ..paths import resolve_path
from ..planning.ledger import add_adapter, charge, generation_bytes
from ..training.devices import to_model_device

#: A conversation: ``{"role", "content"}`` messages, oldest first.
Conversation = list[dict[str, str]]


# --- loading -----------------------------------------------------------------------


def load_for_inference(
    config: ExperimentConfig, adapter: str | os.PathLike[str] | None = None
) -> tuple[torch.nn.Module, PreTrainedTokenizerBase]:
    """The 4-bit base model (as in training), with a LoRA adapter on top if given.

    Args:
        config: the experiment config; its ``model`` section says what to load.
        adapter: a PEFT adapter folder (``adapter_config.json`` + safetensors), or None
            for the base model alone.

    Returns:
        ``(model, tokenizer)``, the model in eval mode.
    """
    path = None if adapter is None else resolve_path(adapter)
    if path is not None and not (path / "adapter_config.json").is_file():  # before any loading
        raise FileNotFoundError(f"{path} is not a PEFT adapter folder (no adapter_config.json)")
    tokenizer = load_tokenizer(config.model)
    model = load_model(config.model)
    if path is not None:
        base, model = model, apply_adapter(model, path, config)
        add_adapter(model, base)  # a GPU-memory ledger, if any, counts the adapter too
    model.eval()
    return model, tokenizer


def apply_adapter(model: torch.nn.Module, path: Path, config: ExperimentConfig,
                  trainable: bool = False) -> torch.nn.Module:
    """PEFT's ``PeftModel.from_pretrained``, with an adapter made for another base model (other
    layer names or shapes) reported as one line that names the folder and the base.

    ``trainable``: its LoRA weights get gradients (a run that goes on training it)."""
    from peft import PeftModel

    from ..errors import UserFacingError
    from ..paths import display_path

    try:
        return PeftModel.from_pretrained(model, str(path), is_trainable=trainable)
    except (ValueError, RuntimeError) as err:
        # PEFT: ValueError for target modules the base lacks or a bad adapter_config.json;
        # torch: RuntimeError "size mismatch" for weights of another shape. Nothing else.
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        if isinstance(err, RuntimeError) and not any("size mismatch" in x for x in lines):
            raise
        mismatches = [x for x in lines if x.startswith("size mismatch")]
        reason = (f"{len(mismatches)} weight(s) of another shape, e.g. {mismatches[0]}"
                  if mismatches else lines[0] if lines else type(err).__name__)
        raise UserFacingError(f"{display_path(path)}: this adapter does not fit the base model "
                              f"{display_path(config.model.name_or_path)}: {reason}") from None


# --- generation --------------------------------------------------------------------


#: Tokens that close an assistant turn in common chat templates (ChatML, Llama 3, Gemma, Phi):
#: also stop tokens when the template has no generation markers to read the end of a turn from.
END_OF_TURN_TOKENS = ("<|im_end|>", "<|eot_id|>", "<end_of_turn>", "<|end|>")


def end_of_turn_token_id(tokenizer: PreTrainedTokenizerBase) -> int | None:
    """The token that closes an assistant turn in the tokenizer's chat template.

    Read from the template itself: the last trained token of an assistant turn (inside
    its ``{% generation %}`` block, trailing whitespace skipped), if it is a special
    token. That is ``<|im_end|>`` for ChatML, EOS for the ``[INST]`` format; None when
    the template has no generation markers.

    Example:
        >>> from ift_tutorial.config import load_config
        >>> from ift_tutorial.loading import load_tokenizer
        >>> tok = load_tokenizer(load_config("tiny").model)
        >>> end_of_turn_token_id(tok) == tok.eos_token_id
        True
    """
    from trl.chat_template_utils import has_generation_markers

    if not tokenizer.chat_template or not has_generation_markers(tokenizer.chat_template):
        return None
    turn = [{"role": "user", "content": "1 + 1"}, {"role": "assistant", "content": "2"},
            {"role": "user", "content": "2 + 2"}]  # a next turn: the end must belong to the first
    out = tokenizer.apply_chat_template(turn, tokenize=True, return_dict=True,
                                        return_assistant_tokens_mask=True)
    special = set(tokenizer.get_added_vocab().values()) | set(tokenizer.all_special_ids)
    trained = [t for t, m in zip(out["input_ids"], out["assistant_masks"]) if m]
    for token_id in reversed(trained):
        if tokenizer.decode([token_id]).strip():
            return token_id if token_id in special else None
    return None


def stop_token_ids(tokenizer: PreTrainedTokenizerBase) -> list[int]:
    """EOS, the chat template's end-of-turn token, and known end-of-turn tokens in the vocabulary.

    A base Qwen2.5 tokenizer's EOS is ``<|endoftext|>``, but its ChatML template closes
    an assistant turn with ``<|im_end|>``, which is what tuning teaches the model to emit:
    generation must stop on either.

    Returns:
        Token ids, EOS first, without repeats.
    """
    ids = [tokenizer.eos_token_id]
    end_of_turn = end_of_turn_token_id(tokenizer)
    if end_of_turn is not None and end_of_turn not in ids:
        ids.append(end_of_turn)
    added = tokenizer.get_added_vocab()
    ids += [added[t] for t in END_OF_TURN_TOKENS if t in added and added[t] not in ids]
    return ids


@dataclass(frozen=True)
class Answer:
    """A decoded answer, and whether the model ended it itself.

    The stop token (EOS, the template's end of turn) is not part of ``text``: decoding
    removes special tokens. ``stopped`` keeps what it said, so that a scorer can tell
    ``"17"`` followed by end-of-turn from ``"17"`` cut off at ``max_new_tokens``.
    """

    text: str  # the new text, special tokens removed
    stopped: bool  # a stop token ended it (not the token limit)


@torch.no_grad()
def greedy_answers(
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    max_new_tokens: int,
    batch_size: int,
    eos_token_id: int | list[int],
) -> list[Answer]:
    """Greedy continuations of fully formatted texts, each with whether a stop token ended it.

    The one place that decodes and tells a finished answer from a cut-off one: chat turns
    (:func:`answer_conversations`) and the evaluation's plain-text continuations both come
    through here. Texts are padded on the *left*, so that in a batch every prompt ends at the
    same position and new tokens line up.

    Args:
        texts: fully formatted texts (special tokens already written).
        eos_token_id: the stop token(s).

    Returns:
        One :class:`Answer` per text (special tokens removed, not stripped).
    """
    stops = torch.tensor([eos_token_id] if isinstance(eos_token_id, int) else list(eos_token_id))
    was_training = model.training
    model.eval()
    # An eval pass must not switch bitsandbytes to its CPU inference layout, whose
    # kernel has no gradient: training after this call would silently stop learning.
    disable_cpu_weight_repacking(model)
    padding_side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    outputs: list[Answer] = []
    try:
        for start in range(0, len(texts), batch_size):
            # The texts already hold BOS; add_special_tokens=False avoids a second one.
            enc = tokenizer(list(texts[start:start + batch_size]), return_tensors="pt",
                            padding=True, add_special_tokens=False)
            rows, width = enc["input_ids"].shape
            # charged at the length asked for, decoded at most to the model's cap (a rehearsal's)
            charge(model, f"generation for {rows} prompts", lambda tag: generation_bytes(
                tag.arch, rows, width, max_new_tokens, tag.compute_bytes))
            enc = to_model_device(enc, model)
            out = model.generate(
                **enc,
                max_new_tokens=min(max_new_tokens, getattr(model, DECODE_CAP, None) or max_new_tokens),
                do_sample=False,
                eos_token_id=eos_token_id,
                pad_token_id=tokenizer.pad_token_id,
            )  # (B, prompt_len + new_len)
            new_tokens = out[:, enc["input_ids"].shape[1]:]  # (B, new_len)
            # A row that ended early is padded after its stop token; a row cut at the limit has none.
            stopped = torch.isin(new_tokens, stops.to(new_tokens.device)).any(dim=1)  # (B,)
            decoded = tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
            outputs += [Answer(t, bool(s)) for t, s in zip(decoded, stopped.tolist())]
    finally:
        tokenizer.padding_side = padding_side
        model.train(was_training)
    return outputs


def generate_responses(
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    conversations: Sequence[Conversation],
    max_new_tokens: int = 32,
    batch_size: int = 32,
) -> list[str]:
    """Greedy answers to each conversation, through the tokenizer's chat template.

    Each conversation ends with a user turn; the template adds the assistant header
    (``add_generation_prompt=True``) and the model continues from there until it emits
    EOS (or the template's end-of-turn token) or reaches ``max_new_tokens``.

    Args:
        conversations: lists of ``{"role", "content"}`` messages.
        max_new_tokens: at most this many generated tokens per answer.
        batch_size: conversations decoded together.

    Returns:
        One answer string per conversation, special tokens removed, ends stripped.
    """
    answers = answer_conversations(model, tokenizer, conversations, max_new_tokens, batch_size)
    return [a.text for a in answers]


def answer_conversations(
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    conversations: Sequence[Conversation],
    max_new_tokens: int = 32,
    batch_size: int = 32,
) -> list[Answer]:
    """:func:`generate_responses`, each answer with whether the model ended its turn itself.

    Returns:
        One :class:`Answer` per conversation, its text stripped at both ends.
    """
    prompts = [tokenizer.apply_chat_template(list(c), tokenize=False, add_generation_prompt=True)
               for c in conversations]
    answers = greedy_answers(model, tokenizer, prompts, max_new_tokens, batch_size,
                             stop_token_ids(tokenizer))
    return [Answer(a.text.strip(), a.stopped) for a in answers]


# --- answering prompts, and chatting ---------------------------------------------------


def generate_cli(
    config: ExperimentConfig,
    adapter: str | None,
    prompts: Sequence[str],
    max_new_tokens: int = 64,
    loaded: tuple[torch.nn.Module, PreTrainedTokenizerBase] | None = None,
) -> list[str]:
    """Answer each prompt independently; returns ``"> prompt\\nanswer"`` blocks to print.

    ``loaded``: a ``(model, tokenizer)`` already in memory, used instead of loading another.
    """
    answers = generate(config, prompts, adapter=adapter, max_new_tokens=max_new_tokens,
                       loaded=loaded)
    return [f"> {p}\n{a}" for p, a in zip(prompts, answers)]


def generate(
    config: ExperimentConfig,
    prompts: Sequence[str],
    adapter: str | None = None,
    max_new_tokens: int = 64,
    loaded: tuple[torch.nn.Module, PreTrainedTokenizerBase] | None = None,
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
        loaded: a ``(model, tokenizer)`` already in memory (a notebook's tuned model):
            used as it is, and ``adapter`` is ignored. On a 16 GB GPU a second 4-bit 7B
            copy beside the first does not fit.

    Returns:
        One answer per prompt, in order.

    Example:
        >>> from ift_tutorial import generate, load_config
        >>> generate(load_config("tiny"), ["What is 7 + 8?"], adapter="data/adapters/tiny-sft")
        ['15']
    """
    model, tokenizer = loaded or load_for_inference(config, adapter)
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
    loaded: tuple[torch.nn.Module, PreTrainedTokenizerBase] | None = None,
) -> int:
    """An interactive chat that keeps the conversation history; an empty line or EOF ends it.

    ``loaded``: a ``(model, tokenizer)`` already in memory, used instead of loading another.

    Returns:
        The exit status (0).
    """
    model, tokenizer = loaded or load_for_inference(config, adapter)
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
    config = copy.deepcopy(base) if base is not None else GenerationConfig()
    stops = stop_token_ids(tokenizer)
    config.eos_token_id = stops if len(stops) > 1 else stops[0]
    config.pad_token_id = tokenizer.pad_token_id
    if tokenizer.bos_token_id is not None:
        config.bos_token_id = tokenizer.bos_token_id
    folder = Path(folder)
    config.save_pretrained(folder)
    return folder / "generation_config.json"
