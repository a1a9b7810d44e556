"""A rehearsal of a 7B preset caps its ``dpo:`` and ``grpo:`` sections like ``training:``
and reads their hub sources from local fixtures of the same columns."""

from __future__ import annotations

import json
import re

from ift_tutorial.config import load_config
from ift_tutorial.instructions.sources import fixture_path
from ift_tutorial.paths import DATA_DIR
from ift_tutorial.instructions.preferences import load_preferences
from ift_tutorial.rehearsal.preset import MAX_EVAL_EXAMPLES, MAX_STEPS, POST_SFT_SECTIONS
from ift_tutorial.settings import DPOSettings, GRPOSettings

README = (DATA_DIR / "README.md").read_text(encoding="utf-8")
HUB_COLUMNS = {"chosen", "rejected"}  # Anthropic/hh-rlhf: two transcripts


def test_the_caps_defaults_are_the_settings_defaults():
    assert POST_SFT_SECTIONS == {"dpo": DPOSettings().max_steps, "grpo": GRPOSettings().max_steps}


def test_rehearsal_caps_dpo_and_reads_its_fixture(monkeypatch):
    monkeypatch.setenv("IFT_REHEARSAL", "1")
    for preset in ("qwen2.5-7b", "llama-3.1-8b", "olmo-2-7b"):
        cfg = load_config(preset)
        assert cfg.dpo.max_steps == MAX_STEPS and cfg.dpo.save_steps <= MAX_STEPS
        assert cfg.dpo.max_eval_examples == MAX_EVAL_EXAMPLES
        assert cfg.dpo.train.offline and cfg.dpo.eval.offline
        for source in (cfg.dpo.train, cfg.dpo.eval):  # pinned, licensed, in data/README.md
            assert re.fullmatch(r"[0-9a-f]{40}", source.revision) and source.licence == "MIT"
            assert source.hub in README and source.revision in README
        pairs, report = load_preferences(cfg.dpo.train)
        assert pairs and "local fixture" in report.notes[0]
        assert not report.ignored_fields and not report.filtered
        first = json.loads(fixture_path(cfg.dpo.train).read_text(encoding="utf-8").splitlines()[0])
        assert set(first) == HUB_COLUMNS
        assert pairs[0]["prompt"][-1]["role"] == "user"


def test_without_rehearsal_the_preset_keeps_its_steps(monkeypatch):
    monkeypatch.delenv("IFT_REHEARSAL", raising=False)
    cfg = load_config("qwen2.5-7b")
    assert cfg.dpo.max_steps == 30 and cfg.dpo.train.hub == "Anthropic/hh-rlhf"
