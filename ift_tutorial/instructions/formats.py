"""Instruction data formats, and one record normalised into a conversation (chapter 5).

Instruction datasets come in a handful of shapes. Every record of any of them becomes
one shape, a *conversation*: a list of messages

    [{"role": "system", "content": "..."},      # optional, first only
     {"role": "user", "content": "..."},
     {"role": "assistant", "content": "..."}, ...]

Formats (detected from the first record, or forced with ``format=``):

- ``messages``: ``{"messages": [{"role": ..., "content": ...}, ...]}``
- ``alpaca``: ``{"instruction", "input" (optional), "output", "system" (optional)}``
- ``sharegpt``: ``{"conversations": [{"from": "human"|"gpt"|"system", "value": ...}]}``
  (``user`` and ``assistant`` are accepted as speakers too)
- ``prompt_completion``: ``{"prompt": str, "completion": str}``, or TRL's
  conversational form where both are lists of messages

A bad record raises :class:`_Invalid` naming the field; the caller adds the file and
the line or record. Reading files is :mod:`ift_tutorial.instructions.reading`; loading,
filtering and reporting a whole file is :mod:`ift_tutorial.instructions.dataset`.
"""

from __future__ import annotations

from typing import Any

from ..errors import UserFacingError

Message = dict[str, str]
Conversation = list[Message]

#: Record formats, in the order their detection rules are tried.
FORMATS = ("messages", "sharegpt", "alpaca", "prompt_completion")
ROLES = ("system", "user", "assistant")
#: ShareGPT speaker names and the role each one becomes.
SHAREGPT_ROLES = {"system": "system", "human": "user", "user": "user",
                  "gpt": "assistant", "assistant": "assistant"}
#: Fields every format allows besides its own: an identifier, ignored.
METADATA_FIELDS = ("id",)

# Fields of each format: (required, optional).
_FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "messages": (("messages",), ()),
    "sharegpt": (("conversations",), ("system",)),
    "alpaca": (("instruction", "output"), ("input", "system")),
    "prompt_completion": (("prompt", "completion"), ("system",)),
}

#: Fields a hub source's ``columns`` may map onto: those of every format, and ``id``.
CONVERSATION_FIELDS = tuple(dict.fromkeys(
    name for required, optional in _FIELDS.values() for name in (*required, *optional)
)) + METADATA_FIELDS


class _Invalid(Exception):
    """A record-level problem; the caller adds the file and the location."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message, self.field = message, field


# --- one record to one conversation ----------------------------------------------


def detect_format(record: Any) -> str | None:
    """The format a record looks like, from its field names; None if none fits."""
    if not isinstance(record, dict):
        return None
    keys = {k for k, v in record.items() if v is not None}
    if "messages" in keys:
        return "messages"
    if "conversations" in keys:
        return "sharegpt"
    if "instruction" in keys:
        return "alpaca"
    if "prompt" in keys and "completion" in keys:
        return "prompt_completion"
    return None


def _text(value: Any, field: str, optional: bool = False) -> str | None:
    """A non-empty string; None for an absent optional field (empty counts as absent)."""
    if value is None or (optional and value == ""):
        if optional:
            return None
        raise _Invalid("missing or null", field)
    if not isinstance(value, str):
        raise _Invalid(f"must be a string, got {type(value).__name__}: {value!r:.60}", field)
    if not value.strip():
        raise _Invalid("empty content (only whitespace)" if value else "empty content", field)
    return value


def _check_fields(record: Any, fmt: str, strict: bool, ignored: set[str]) -> dict[str, Any]:
    """Check the record's field names against its format; drop null fields."""
    if not isinstance(record, dict):
        raise _Invalid(f"expected an object with fields, got {type(record).__name__}")
    required, optional = _FIELDS[fmt]
    allowed = (*required, *optional, *METADATA_FIELDS)
    record = {k: v for k, v in record.items() if v is not None}
    for name in required:
        if name not in record:
            raise _Invalid(f"missing field '{name}' required by the {fmt} format; the record "
                           f"has {sorted(record)}", name)
    unknown = sorted(set(record) - set(allowed))
    if unknown and strict:
        raise _Invalid(f"unknown field(s) {unknown} for the {fmt} format; allowed: "
                       f"{list(allowed)}", unknown[0])
    ignored.update(unknown)
    return record


def _turns(value: Any, field: str, role_key: str, content_key: str,
           role_map: dict[str, str], strict: bool) -> Conversation:
    """A list of turns (messages or ShareGPT) as messages, field by field checked."""
    if not isinstance(value, list):
        raise _Invalid(f"expected a list of turns, got {type(value).__name__}", field)
    if not value:
        raise _Invalid("no turns", field)
    conv = []
    for i, turn in enumerate(value):
        where = f"{field}[{i}]"
        if not isinstance(turn, dict):
            raise _Invalid(f"expected an object with '{role_key}' and '{content_key}', got "
                           f"{type(turn).__name__}", where)
        turn = {k: v for k, v in turn.items() if v is not None}
        unknown = sorted(set(turn) - {role_key, content_key})
        if unknown and strict:
            raise _Invalid(f"unknown field(s) {unknown}; allowed: ['{role_key}', "
                           f"'{content_key}']", f"{where}.{unknown[0]}")
        if role_key not in turn:
            raise _Invalid("missing", f"{where}.{role_key}")
        role = turn[role_key]
        if not isinstance(role, str) or role not in role_map:
            raise _Invalid(f"unknown role {role!r}; allowed: {list(role_map)}",
                           f"{where}.{role_key}")
        content = _text(turn.get(content_key), f"{where}.{content_key}")
        conv.append({"role": role_map[role], "content": content})
    return conv


def _check_turn_order(conv: Conversation, field: str, role_key: str = "role") -> None:
    """Raise unless: optional system first, then user/assistant alternating, ending on assistant.

    ``field`` and ``role_key`` only name the place in error messages.
    """
    start = 1 if conv and conv[0]["role"] == "system" else 0
    for i, msg in enumerate(conv[start:], start=start):
        expected = "user" if (i - start) % 2 == 0 else "assistant"
        if msg["role"] != expected:
            why = ("a system turn is only allowed first" if msg["role"] == "system"
                   else "user and assistant turns must alternate, starting with user")
            raise _Invalid(f"turn {i} is {msg['role']!r}, expected {expected!r}: {why}",
                           f"{field}[{i}].{role_key}")
    if not any(m["role"] == "assistant" for m in conv):
        raise _Invalid("the conversation has no assistant turn: nothing to learn from", field)
    if conv[-1]["role"] != "assistant":
        raise _Invalid("the conversation ends with a user turn that has no answer",
                       f"{field}[{len(conv) - 1}].{role_key}")


def _normalize_record(record: Any, fmt: str, strict: bool = True,
                      ignored: set[str] | None = None) -> Conversation:
    """One record of format ``fmt`` as a conversation (raises ``_Invalid`` if bad)."""
    ignored = set() if ignored is None else ignored
    rec = _check_fields(record, fmt, strict, ignored)
    system = _text(rec.get("system"), "system", optional=True)
    if fmt == "messages":
        conv = _turns(rec["messages"], "messages", "role", "content",
                      {r: r for r in ROLES}, strict)
        _check_turn_order(conv, "messages")
        return conv
    if fmt == "sharegpt":
        conv = _turns(rec["conversations"], "conversations", "from", "value",
                      SHAREGPT_ROLES, strict)
        _check_turn_order(conv, "conversations", "from")
    elif fmt == "alpaca":
        instruction = _text(rec["instruction"], "instruction")
        extra = _text(rec.get("input"), "input", optional=True)
        user = instruction if extra is None else f"{instruction}\n\n{extra}"
        conv = [{"role": "user", "content": user},
                {"role": "assistant", "content": _text(rec["output"], "output")}]
    elif fmt == "prompt_completion":
        prompt, completion = rec["prompt"], rec["completion"]
        if isinstance(prompt, list) or isinstance(completion, list):  # TRL conversational
            roles = {r: r for r in ROLES}
            conv = (_turns(prompt, "prompt", "role", "content", roles, strict)
                    + _turns(completion, "completion", "role", "content", roles, strict))
            _check_turn_order(conv, "prompt+completion")
        else:
            conv = [{"role": "user", "content": _text(prompt, "prompt")},
                    {"role": "assistant", "content": _text(completion, "completion")}]
    else:
        raise UserFacingError(f"unknown format {fmt!r}; choose from auto, {', '.join(FORMATS)}")
    if system is not None:
        if conv[0]["role"] == "system":
            raise _Invalid("a 'system' field and a system turn: keep one", "system")
        conv.insert(0, {"role": "system", "content": system})
    return conv
