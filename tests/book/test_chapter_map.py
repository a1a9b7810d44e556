"""The preface's chapter map is what ift_tutorial.book.chapter_map gives today.

The preface is markdown and cannot glue numbers, so the table is written into both
intro.md pages (``python -m ift_tutorial.book.chapter_map --write``); these tests fail
when the measurements, the notebooks or the presets change and the pages were not
rewritten, and check the map's numbers against their sources.
"""

from __future__ import annotations

import json
import re

import pytest
from helpers import BOOK, ROOT, cell_source, notebook_cells

from ift_tutorial.book import chapter_map


@pytest.mark.parametrize("edition", ["en", "zh"])
def test_the_preface_holds_todays_chapter_map(edition):
    page = chapter_map.edition_dir(edition) / "intro.md"
    text = page.read_text(encoding="utf-8")
    assert chapter_map.page_table(text) == chapter_map.markdown_table(edition), (
        f"{page.relative_to(ROOT)} is out of date: python -m ift_tutorial.book.chapter_map --write")


@pytest.mark.parametrize("edition", ["en", "zh"])
def test_every_chapter_is_on_the_map_with_its_own_colab_link(edition):
    rows = chapter_map.chapters(edition)
    assert [r.number for r in rows] == list(range(1, 13))
    for row in rows:
        if row.notebook is None:
            assert row.number in chapter_map.PLANNED and not row.cpu_measured
            continue
        badge = cell_source(notebook_cells(chapter_map.edition_dir(edition) / row.notebook)[0])
        assert row.colab_url in badge, f"{edition} {row.notebook}: its badge opens another address"


def test_measured_times_are_shown_as_measured():
    results = ROOT / "benchmarks" / "results" / "chapter_times.json"
    measured = json.loads(results.read_text())["chapters"] if results.is_file() else {}
    for row in chapter_map.chapters("en"):
        stem = row.notebook and row.notebook.removeprefix("chapters/").removesuffix(".ipynb")
        assert row.cpu_measured == (stem in measured), row
        if row.cpu_measured:
            assert row.cpu_minutes == pytest.approx(measured[stem]["cpu_seconds"] / 60)


def test_planned_t4_minutes_are_the_presets_own():
    preset = (ROOT / "configs" / "qwen2.5-7b.yaml").read_text(encoding="utf-8")
    training = int(re.search(r"Training budget (\d+) min", preset).group(1))
    evaluation = int(re.search(r"before and after ~(\d+) min", preset).group(1))
    assert chapter_map.T4_MINUTES[7] == training + evaluation
    gpu_chapters = {r.number for r in chapter_map.chapters("en") if r.gpu_at_7b}
    assert set(chapter_map.T4_MINUTES) <= gpu_chapters


def test_the_map_needs_its_markers_and_a_known_edition():
    with pytest.raises(ValueError, match="chapter-map:start"):
        chapter_map.page_table("# Preface\n\nno map here\n")
    with pytest.raises(ValueError, match="edition must be one of"):
        chapter_map.markdown_table("fr")
