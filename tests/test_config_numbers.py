"""Numeric config values are numbers, whatever YAML made of them; anything else is named."""

from __future__ import annotations

import pytest

from ift_tutorial.config import ConfigError, load_config


def test_an_exponent_without_a_dot_is_a_float_not_text(tmp_path):
    cfg = load_config("tiny", ["training.learning_rate=2e-05", "training.max_steps=5.0"])
    assert cfg.training.learning_rate == 2e-05 and isinstance(cfg.training.learning_rate, float)
    assert cfg.training.max_steps == 5 and isinstance(cfg.training.max_steps, int)
    own = tmp_path / "mine.yaml"
    own.write_text("base: tiny\ntraining:\n  learning_rate: 1e-4\n", encoding="utf-8")
    assert load_config(own).training.learning_rate == 1e-4


@pytest.mark.parametrize("override,message", [
    ("training.learning_rate=fast", "learning_rate must be a number, got 'fast'"),
    ("training.max_steps=2.5", "max_steps must be a whole number, got 2.5"),
    ("training.max_steps=true", "max_steps must be a number, got True"),
])
def test_a_value_that_is_not_a_number_is_named_with_its_section(override, message):
    with pytest.raises(ConfigError, match=f"section 'training': {message}"):
        load_config("tiny", [override])
