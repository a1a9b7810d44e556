"""Test-wide settings: offline, headless, deterministic, and gentle on a 2-core machine."""

from __future__ import annotations

import os

import pytest

# tests/helpers.py holds what test modules share (``from helpers import ...`` works because
# pytest's default import mode puts this folder on sys.path); rewrite its asserts as in a test.
pytest.register_assert_rewrite("helpers")

# Nothing in the test suite may reach a model hub: fail fast instead of downloading.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
