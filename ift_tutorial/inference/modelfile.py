"""An Ollama Modelfile whose TEMPLATE renders exactly what the tokenizer's chat template renders.

Ollama does not run Jinja: its prompt template is a Go template. A Modelfile without the
right TEMPLATE and ``PARAMETER stop`` lines is the usual cause of an exported model that
"never stops" or answers in gibberish: the model sees prompts in a format it was never
tuned on, or its end-of-turn token is not a stop.

:func:`chat_wrappers` reads the wrapping of each role from the Jinja template itself, by
rendering conversations whose contents are marker strings and cutting the result at the
markers; :func:`go_template` writes those wrappers as a Go template; :func:`render_go`
evaluates the small subset of Go templates written here, so that :func:`check_template`
can compare both renderings, string for string, on sample conversations.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import UserFacingError
from .gguf_checks import inference_template

_S, _U1, _A1, _U2 = "\x01SYSTEM\x01", "\x01USER1\x01", "\x01ANSWER1\x01", "\x01USER2\x01"


class TemplateError(UserFacingError):
    """The chat template is not a sequence of role wrappers that a Go template can express."""


@dataclass(frozen=True)
class ChatWrappers:
    """What the chat template writes around each message (``prefix + content + suffix``)."""

    start: str  # before the first message when it is not a system message (BOS, default system)
    start_system: str | None  # before a first system message's content; None: not supported
    system_suffix: str
    user: tuple[str, str]  # (prefix, suffix)
    assistant: tuple[str, str]
    generation: str  # the generation prompt: what opens the assistant's turn to be written


def _render(tokenizer, template: str, messages: list[dict], gen: bool) -> str:
    return tokenizer.apply_chat_template(messages, chat_template=template, tokenize=False,
                                         add_generation_prompt=gen)


def _between(text: str, left: str, right: str) -> str:
    return text[text.index(left) + len(left):text.index(right)]


def chat_wrappers(tokenizer) -> ChatWrappers:
    """The role wrappers of ``tokenizer``'s chat template, read off rendered marker strings.

    Raises:
        TemplateError: the template is not of this shape (checked by :func:`check_template`).
    """
    template = inference_template(tokenizer.chat_template or "")
    user, answer = {"role": "user", "content": _U1}, {"role": "assistant", "content": _A1}
    three = [user, answer, {"role": "user", "content": _U2}]
    plain = _render(tokenizer, template, three, False)
    user_suffix = plain[plain.index(_U2) + len(_U2):]  # nothing follows the last message
    generation = _render(tokenizer, template, three, True)[len(plain):]
    assistant_prefix = _between(plain, _U1, _A1)[len(user_suffix):]
    two = _render(tokenizer, template, [user, answer], False)
    assistant_suffix = two[two.index(_A1) + len(_A1):]
    user_prefix = _between(plain, _A1, _U2)[len(assistant_suffix):]
    before = plain[:plain.index(_U1)]
    if not before.endswith(user_prefix):
        raise TemplateError("the chat template's first user turn differs from the others")
    start = before[:len(before) - len(user_prefix)]
    system = _render(tokenizer, template, [{"role": "system", "content": _S}, user], False)
    between = _between(system, _S, _U1)
    start_system = system[:system.index(_S)] if between.endswith(user_prefix) else None
    system_suffix = between[:len(between) - len(user_prefix)] if start_system is not None else ""
    return ChatWrappers(start, start_system, system_suffix, (user_prefix, user_suffix),
                        (assistant_prefix, assistant_suffix), generation)


def _go_text(text: str) -> str:
    """Literal text inside a Go template: ``{{`` must not start an action."""
    return text.replace("{{", '{{ "{{" }}')


def go_template(w: ChatWrappers, drop_bos: str | None = None) -> str:
    """The Go template (Ollama's TEMPLATE) of the wrappers ``w``.

    Args:
        drop_bos: the BOS text to leave out at the start, when the runtime adds BOS itself
            (``tokenizer.ggml.add_bos_token``): written twice, it would be two BOS tokens.
    """
    start, start_system = w.start, w.start_system
    if drop_bos:
        start = start.removeprefix(drop_bos)
        start_system = start_system.removeprefix(drop_bos) if start_system is not None else None
    head = _go_text(start)
    if start_system is not None:
        head = (f'{{{{ if eq (index .Messages 0).Role "system" }}}}{_go_text(start_system)}'
                f"{{{{ else }}}}{_go_text(start)}{{{{ end }}}}")
    body = (f'{{{{ if eq .Role "user" }}}}{_go_text(w.user[0])}{{{{ .Content }}}}'
            f'{_go_text(w.user[1])}{{{{ else if eq .Role "assistant" }}}}'
            f"{_go_text(w.assistant[0])}{{{{ .Content }}}}{_go_text(w.assistant[1])}")
    if start_system is not None:
        body += f'{{{{ else if eq .Role "system" }}}}{{{{ .Content }}}}{_go_text(w.system_suffix)}'
    return f"{head}{{{{ range .Messages }}}}{body}{{{{ end }}}}{{{{ end }}}}{_go_text(w.generation)}"


#: Conversations :func:`check_template` renders both ways: one turn, several, a system line,
#: and contents with newlines, braces and non-ASCII text.
SAMPLE_CONVERSATIONS = [
    [{"role": "user", "content": "What is 7 + 5?"}],
    [{"role": "system", "content": "Answer in one word."},
     {"role": "user", "content": "In which city does Bora live?"}],
    [{"role": "user", "content": "Bora 住在哪个城市？"}, {"role": "assistant", "content": "Zandor"},
     {"role": "user", "content": "Spell {{ it }}\nbackwards."}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "1 + 1"},
     {"role": "assistant", "content": "2"}, {"role": "user", "content": "2 + 2"}],
]


def check_template(tokenizer, template: str, bos: str = "") -> int:
    """Render :data:`SAMPLE_CONVERSATIONS` with the Jinja and the Go template; they must agree.

    Args:
        bos: the BOS text the runtime adds before the Go template's output (``""``: none).

    Returns:
        How many conversations were compared (those with a system message are skipped when
        the Go template has no system branch).

    Raises:
        TemplateError: a conversation renders differently, named with both strings.
    """
    jinja = inference_template(tokenizer.chat_template or "")
    compared = 0
    for conv in SAMPLE_CONVERSATIONS:
        if conv[0]["role"] == "system" and '"system"' not in template:
            continue
        want = _render(tokenizer, jinja, conv, True)
        got = bos + render_go(template, conv)
        if got != want:
            raise TemplateError(f"the Modelfile TEMPLATE renders {got!r} where the chat template "
                                f"renders {want!r}")
        compared += 1
    return compared


def _quoted(text: str) -> str:
    """A Modelfile string: triple-quoted, so that newlines and quotes pass unchanged."""
    if '"""' in text:
        raise TemplateError('a chat template containing """ cannot be written into a Modelfile')
    return f'"""{text}"""'


def modelfile(gguf_name: str, template: str, stops: list[str], context_length: int,
              system_supported: bool = True) -> str:
    """The Modelfile text: FROM, TEMPLATE, one ``PARAMETER stop`` per stop token, context.

    ``temperature 0`` makes Ollama decode greedily, as the book's evaluations do.
    """
    lines = [f"FROM ./{gguf_name}", f"TEMPLATE {_quoted(template)}"]
    lines += [f"PARAMETER stop {_quoted(s)}" for s in stops]
    lines += [f"PARAMETER num_ctx {context_length}", "PARAMETER temperature 0"]
    if not system_supported:
        lines.insert(0, "# This chat template folds a system prompt into the first user turn; "
                        "the TEMPLATE below has no system branch.")
    return "\n".join(lines) + "\n"


# --- a tiny evaluator of the Go templates written above -------------------------------------

_ACTION = re.compile(r"\{\{(-?)\s*(.*?)\s*(-?)\}\}", re.S)


def _parse(template: str) -> list:
    """Text and actions, with Go's ``{{-`` / ``-}}`` whitespace trimming applied."""
    parts: list = []
    pos, trim_next = 0, False
    for m in _ACTION.finditer(template):
        text = template[pos:m.start()]
        text = text.lstrip() if trim_next else text
        parts.append(text.rstrip() if m.group(1) else text)
        inner = m.group(2)
        parts.append(("lit", inner[1:-1]) if inner.startswith('"') else ("act", inner))
        pos, trim_next = m.end(), bool(m.group(3))
    tail = template[pos:]
    parts.append(tail.lstrip() if trim_next else tail)
    return parts


def _true(cond: str, message: dict | None, messages: list[dict]) -> bool:
    m = re.fullmatch(r'eq (\.Role|\(index \.Messages 0\)\.Role) "(\w+)"', cond)
    if not m:
        raise ValueError(f"unsupported condition {cond!r}")
    role = message["role"] if m.group(1) == ".Role" else messages[0]["role"]
    return role == m.group(2)


def _run(parts: list, i: int, message: dict | None, messages: list[dict], out: list[str],
         emit: bool = True) -> int:
    """Evaluate from ``parts[i]`` to the matching ``end``/``else``; returns where it stopped."""
    while i < len(parts):
        p = parts[i]
        if isinstance(p, str) or p[0] == "lit":
            if emit:
                out.append(p if isinstance(p, str) else p[1])
            i += 1
            continue
        act = p[1]
        if act == ".Content":
            if emit:
                out.append(message["content"])
            i += 1
        elif act == "range .Messages":
            end = i + 1
            for msg in messages:
                end = _run(parts, i + 1, msg, messages, out, emit)
            i = end if messages else _run(parts, i + 1, None, messages, out, False)
            i += 1  # past its end
        elif act.startswith("if "):
            taken = emit and _true(act[3:], message, messages)
            i = _run(parts, i + 1, message, messages, out, taken)
            done = taken
            while parts[i] != ("act", "end"):
                branch = parts[i][1]
                go = emit and not done and (branch == "else" or _true(branch[8:], message, messages))
                done = done or go
                i = _run(parts, i + 1, message, messages, out, go)
            i += 1
        else:  # else, else if ..., end: the caller's
            return i
    return i


def render_go(template: str, messages: list[dict]) -> str:
    """Ollama's rendering of ``messages`` by a Go template of :func:`go_template`'s subset.

    Example:
        >>> render_go('{{- range .Messages }}[{{ .Content }}]{{- end }}>', [{"role": "user", "content": "hi"}])
        '[hi]>'
    """
    out: list[str] = []
    _run(_parse(template), 0, None, messages, out)
    return "".join(out)
