"""Known-harmless library messages, silenced at their source, one by one.

Each entry names where a message comes from (a logger, or a warning category and
module), matches the start of its text exactly, and says why it is harmless here.
Nothing else is touched: other warnings, every error, and in particular
bitsandbytes' ``autograd kernel was not registered`` (a real bug, see
:func:`ift_tutorial.loading.disable_cpu_weight_repacking`) still reach the reader.

:func:`silence_known_messages` is called when ``ift_tutorial`` is imported (bitsandbytes
logs its line while it is being imported, so later would be too late), and again by the
loaders and the notebooks' setup cell; it is idempotent.
"""

from __future__ import annotations

import logging
import re
import warnings
from dataclasses import dataclass


@dataclass(frozen=True)
class KnownMessage:
    """One library message that tells the reader nothing they can act on."""

    source: str  # a logger name, or the module that issues a warning
    pattern: str  # a regular expression matched at the start of the message
    why: str  # why it is harmless in this project
    category: type[Warning] | None = None  # a warnings category; None for a log record


KNOWN_MESSAGES: tuple[KnownMessage, ...] = (
    KnownMessage(
        "bitsandbytes.backends.cpu.ops",
        r"Failed to load CPU gemm_4bit_forward from kernels-community",
        "on CPUs with AVX512-BF16, bitsandbytes 0.50 tries the optional `kernels` package "
        "(which downloads code from the hub) and falls back to its own bundled kernel; "
        "the project never installs `kernels` and turns that CPU path off anyway",
    ),
    KnownMessage(
        r"transformers\.modeling_utils",
        r"`is_gradient_checkpointing` is deprecated and will be removed in v6",
        "PEFT 0.21 and TRL 1.16 read the old property name of transformers 5; "
        "the value is the same as `is_activation_checkpointing`",
        category=FutureWarning,
    ),
)


class _DropMatching(logging.Filter):
    """Drops the records of one logger whose message starts with ``pattern``."""

    def __init__(self, pattern: str):
        super().__init__()
        self.pattern = pattern
        self.regex = re.compile(pattern)

    def filter(self, record: logging.LogRecord) -> bool:
        return self.regex.match(record.getMessage()) is None


def silence_known_messages(messages: tuple[KnownMessage, ...] = KNOWN_MESSAGES) -> None:
    """Install a logging filter or a warnings filter for each of ``messages``.

    Safe to call again: nothing is installed twice.

    Example:
        >>> import logging
        >>> silence_known_messages()
        >>> log = logging.getLogger("bitsandbytes.backends.cpu.ops")
        >>> any(isinstance(f, _DropMatching) for f in log.filters)
        True
    """
    for m in messages:
        if m.category is None:
            log = logging.getLogger(m.source)
            if not any(isinstance(f, _DropMatching) and f.pattern == m.pattern for f in log.filters):
                log.addFilter(_DropMatching(m.pattern))
        else:
            # filterwarnings replaces an identical filter instead of adding a second one
            warnings.filterwarnings("ignore", message=m.pattern, category=m.category,
                                    module=m.source)
