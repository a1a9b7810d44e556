"""notebook.glue stores a value for the book's prose in the format myst-nb reads."""

from __future__ import annotations

import IPython.display

from ift_tutorial.book import notebook


def _captured(monkeypatch, *args, **kwargs) -> list[tuple[dict, dict]]:
    shown: list[tuple[dict, dict]] = []
    monkeypatch.setattr(IPython.display, "display",
                        lambda data, raw, metadata: shown.append((data, metadata)))
    notebook.glue(*args, **kwargs)
    return shown


def test_a_string_is_stored_as_it_is_and_hidden(monkeypatch):
    [(data, metadata)] = _captured(monkeypatch, "ratio", "9.1×")
    assert data == {notebook.GLUE_PREFIX + "text/plain": "9.1×"}  # no repr quotes
    assert metadata["scrapbook"] == {"name": "ratio", "mime_prefix": notebook.GLUE_PREFIX}


def test_a_number_goes_through_the_formatters_and_can_be_shown(monkeypatch):
    [(data, metadata)] = _captured(monkeypatch, "share", 0.75, display=True)
    assert data["text/plain"] == "0.75"  # {glue:text}`share:.0%` formats it
    assert metadata["scrapbook"]["mime_prefix"] == ""


def test_matches_myst_nb_for_non_strings(monkeypatch):
    from myst_nb import glue as myst_glue

    ours = _captured(monkeypatch, "n", 42)
    theirs: list[tuple[dict, dict]] = []
    import myst_nb.ext.glue as ext

    monkeypatch.setattr(ext, "ipy_display", lambda data, raw, metadata: theirs.append((data, metadata)))
    myst_glue("n", 42, display=False)
    assert ours == theirs
