"""Multi-turn reasoning data: one training sample per assistant turn (chapter 11).

A reasoning template such as ``configs/chat_templates/think.jinja`` keeps the reasoning of
the turns after the last user message only; earlier answers stay in the history without
theirs, as a chat client sends them back. Training on those earlier answers would teach
the model to answer *without* thinking, so the template puts the loss on the last turns
only. :func:`one_sample_per_turn` then gets every turn trained, each with its own
reasoning: a conversation with three assistant turns becomes three samples, each ending
at one of them, with the history before it as context.
"""

from __future__ import annotations

from collections.abc import Iterable

from .formats import Conversation


def one_sample_per_turn(conversation: Conversation) -> list[Conversation]:
    """The conversation cut after each assistant turn that answers a user message.

    Consecutive assistant turns (after the same user message) stay in one sample: they
    are one answer, trained together.

    Example:
        >>> chat = [{"role": "user", "content": "1 + 1?"},
        ...         {"role": "assistant", "content": "2"},
        ...         {"role": "user", "content": "2 + 2?"},
        ...         {"role": "assistant", "content": "4"}]
        >>> [len(sample) for sample in one_sample_per_turn(chat)]
        [2, 4]
    """
    ends = [i + 1 for i, message in enumerate(conversation)
            if message["role"] == "assistant"
            and (i + 1 == len(conversation) or conversation[i + 1]["role"] != "assistant")]
    return [[dict(m) for m in conversation[:end]] for end in ends]


def split_turns(conversations: Iterable[Conversation]) -> tuple[list[Conversation], int]:
    """Every conversation as :func:`one_sample_per_turn`, and how many samples were added.

    The count is for the data report: nothing is dropped, a conversation with ``k``
    answers becomes ``k`` samples (``k - 1`` added).
    """
    samples: list[Conversation] = []
    added = 0
    for conversation in conversations:
        parts = one_sample_per_turn(conversation)
        samples += parts
        added += max(len(parts) - 1, 0)
    return samples, added
