"""The tiny preset's tokenizer: byte-level BPE with spaces as their own token, and a chat template.

Two choices matter for a model this small:

* **Spaces are their own token.** GPT-2-style tokenizers glue a leading space to the
  word (`` Bora`` and ``Bora`` are different tokens), so a name learnt at the start
  of a sentence is a different token sequence in the middle of one. Splitting every
  whitespace character, every punctuation mark and every digit into its own
  pre-token makes ``Bora`` the same tokens everywhere, in both languages.
* **The chat template marks what the assistant says** with
  ``{% generation %}...{% endgeneration %}``, so that
  ``apply_chat_template(..., return_assistant_tokens_mask=True)`` (and TRL's
  ``assistant_only_loss=True``) can put the loss on the answer only. The EOS token
  sits *inside* the generation block: it is part of the labels, and the tuned model
  learns to stop after its answer.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

PAD, BOS, EOS = "<pad>", "<s>", "</s>"
SYSTEM, USER, ASSISTANT = "<|system|>", "<|user|>", "<|assistant|>"
SPECIAL_TOKENS = [PAD, BOS, EOS, SYSTEM, USER, ASSISTANT]

#: The chat template (Jinja). Rendered, one exchange looks like::
#:
#:     <s><|user|>
#:     What is 2 + 3?
#:     <|assistant|>
#:     5</s>
#:
#: Only ``5</s>`` is inside ``{% generation %}``: those are the tokens that get a loss.
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'system' -%}"
    "{{ '<|system|>\n' + message['content'] + '\n' }}"
    "{%- elif message['role'] == 'user' -%}"
    "{{ '<|user|>\n' + message['content'] + '\n' }}"
    "{%- elif message['role'] == 'assistant' -%}"
    "{{ '<|assistant|>\n' }}"
    "{% generation %}{{ message['content'] + eos_token }}{% endgeneration %}"
    "{{ '\n' }}"
    "{%- else -%}"
    "{{ raise_exception('unknown role: ' + message['role']) }}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|assistant|>\n' }}{%- endif -%}"
)


def _pre_tokenizer(split_digits: bool = True) -> pre_tokenizers.PreTokenizer:
    """Whitespace and punctuation isolated (digits too if asked); then bytes to printable characters."""
    steps = [
        # Each whitespace character and each punctuation mark is a pre-token of its own.
        pre_tokenizers.Split(Regex(r"\s|[^\w\s]"), behavior="isolated"),
    ]
    if split_digits:
        # "12" is "1" "2"; without this, BPE may learn "12" as one token.
        steps.append(pre_tokenizers.Digits(individual_digits=True))
    steps.append(pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False))
    return pre_tokenizers.Sequence(steps)


def train_tokenizer(texts: Iterable[str], vocab_size: int = 2048,
                    split_digits: bool = True) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE tokenizer on ``texts`` and wrap it for ``transformers``.

    Args:
        texts: the corpus documents.
        vocab_size: the largest vocabulary, special tokens and the 256 bytes included
            (smaller if the corpus runs out of pairs to merge).
        split_digits: every digit its own token (numbers spelled digit by digit).

    Returns:
        A ``PreTrainedTokenizerFast`` with BOS/EOS/PAD set, the chat template attached
        and left padding (generation in batches needs the prompts right-aligned).
    """
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = _pre_tokenizer(split_digits)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        additional_special_tokens=[SYSTEM, USER, ASSISTANT],
        padding_side="left",
        clean_up_tokenization_spaces=False,
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def save_tokenizer(tokenizer: PreTrainedTokenizerFast, folder: str | os.PathLike[str]) -> Path:
    """Save the tokenizer (``tokenizer.json``, its config and the chat template) to ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(folder)
    # Name the portable class: transformers 5 writes its own backend name, which older
    # releases cannot load; both load "PreTrainedTokenizerFast" to the same tokenizer.
    config_path = folder / "tokenizer_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    config_path.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return folder
