"""The book's MathJax extension: local copy when it can, CDN with a warning when it cannot."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import SimpleNamespace

import pytest
from helpers import BOOK

EXT = BOOK / "_ext" / "local_mathjax.py"


@pytest.fixture
def lm():
    spec = importlib.util.spec_from_file_location("local_mathjax", EXT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fake_es5(cache: Path, version: str) -> Path:
    es5 = cache / f"mathjax-{version}" / "es5"
    (es5 / "output" / "chtml" / "fonts").mkdir(parents=True)
    (es5 / "tex-chtml.js").write_text("/* mathjax */")
    (es5 / "output" / "chtml" / "fonts" / "tex.js").write_text("/* fonts */")
    return es5


def test_cached_copy_is_used_without_npm(lm, tmp_path, monkeypatch):
    es5 = fake_es5(tmp_path, lm.MATHJAX_VERSION)
    monkeypatch.setattr(lm.shutil, "which", lambda name: None)
    assert lm.fetch_mathjax(tmp_path) == es5


def test_without_npm_or_cache_the_build_falls_back_to_the_cdn(lm, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(lm.shutil, "which", lambda name: None)
    monkeypatch.setattr(lm, "CACHE_DIR", tmp_path)
    monkeypatch.setattr(lm.fetch_mathjax, "__defaults__", (tmp_path,))
    config = SimpleNamespace(mathjax_path=lm.LOCAL_PATH)
    lm._config_inited(SimpleNamespace(), config)
    assert config.mathjax_path == lm.CDN_URL
    assert "warning" in capsys.readouterr().err


def test_another_mathjax_path_is_left_alone(lm):
    config = SimpleNamespace(mathjax_path="https://example.org/mathjax.js")
    lm._config_inited(SimpleNamespace(), config)
    assert config.mathjax_path == "https://example.org/mathjax.js"


def test_copy_into_build_copies_once_per_version(lm, tmp_path):
    es5 = fake_es5(tmp_path / "cache", lm.MATHJAX_VERSION)
    out = tmp_path / "html"
    dest = lm.copy_into_build(es5, out)
    assert dest == out / "_static" / "mathjax"
    assert (dest / "tex-chtml.js").read_text() == "/* mathjax */"
    assert (dest / "output" / "chtml" / "fonts" / "tex.js").is_file()
    (es5 / "tex-chtml.js").write_text("/* changed */")
    lm.copy_into_build(es5, out)  # same version already there: not copied again
    assert (dest / "tex-chtml.js").read_text() == "/* mathjax */"
