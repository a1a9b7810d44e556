"""Known-harmless library messages are silenced, exactly those, and the CLI is quiet."""

from __future__ import annotations

import importlib.util
import logging
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from transformers import LlamaConfig, LlamaForCausalLM

from ift_tutorial.paths import DATA_DIR, PROJECT_ROOT
from ift_tutorial.quiet import KNOWN_MESSAGES, silence_known_messages

BNB_LOGGER = "bitsandbytes.backends.cpu.ops"


def _bnb_message_format() -> str:
    """The format string that the installed bitsandbytes logs, read from its source."""
    source = Path(importlib.util.find_spec(BNB_LOGGER).origin).read_text(encoding="utf-8")
    [fmt] = re.findall(r'"(Failed to load CPU gemm_4bit_forward from kernels-community[^"]*)"', source)
    return fmt


def test_the_bitsandbytes_kernels_line_is_dropped_and_nothing_else(caplog):
    silence_known_messages()
    silence_known_messages()  # idempotent: one filter, not two
    log = logging.getLogger(BNB_LOGGER)
    assert len(log.filters) == 1
    with caplog.at_level(logging.WARNING, logger=BNB_LOGGER):
        log.warning(_bnb_message_format(), "No module named 'kernels'")
        log.warning("Some other problem of the CPU backend")
    assert [r.getMessage() for r in caplog.records] == ["Some other problem of the CPU backend"]


def _tiny_llama() -> LlamaForCausalLM:
    return LlamaForCausalLM(LlamaConfig(vocab_size=32, hidden_size=8, intermediate_size=16,
                                        num_hidden_layers=1, num_attention_heads=2,
                                        num_key_value_heads=2))


def test_the_transformers_deprecation_is_silenced_and_other_warnings_are_not():
    model = _tiny_llama()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.is_gradient_checkpointing  # what PEFT and TRL read  # noqa: B018
        assert [w.category for w in caught] == [FutureWarning]  # the real message, unsilenced
        caught.clear()
        silence_known_messages()
        assert model.is_gradient_checkpointing is False
        warnings.warn("`is_gradient_checkpointing` is deprecated and will be removed in v6",
                      FutureWarning)  # same text from another module: still shown
        warnings.warn("bitsandbytes::gemv_4bit: an autograd kernel was not registered", UserWarning)
    assert [(w.category, str(w.message)[:30]) for w in caught] == [
        (FutureWarning, "`is_gradient_checkpointing` is"), (UserWarning, "bitsandbytes::gemv_4bit: an au")]


def test_every_known_message_says_why_it_is_harmless():
    for m in KNOWN_MESSAGES:
        assert len(m.why) > 40 and re.compile(m.pattern) and not m.pattern.startswith(".*"), m


@pytest.mark.skipif(PROJECT_ROOT is None, reason="needs the checkout (cwd for the command)")
def test_generate_prints_no_warning_and_no_progress_bar():
    """The base model and the shipped adapter load, answer, and stderr stays empty of noise."""
    cmd = [sys.executable, "-m", "ift_tutorial.cli", "generate", "--config", "tiny",
           "--adapter", str(DATA_DIR / "adapters" / "tiny-sft"), "--prompt", "2 + 3 =",
           "--max-new-tokens", "4"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.startswith("> 2 + 3 =\n") and len(proc.stdout.splitlines()) == 2
    noisy = [line for line in proc.stderr.splitlines()
             if re.search(r"warning|kernels-community|it/s\]|%\|", line, re.I)]
    assert noisy == [], proc.stderr[-3000:]
