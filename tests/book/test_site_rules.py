"""Rules every page of both editions follows, read from the sources.

- No page shows a remote image: the book reads offline, so every image (the Colab badge
  included) is a file of the book.
- Every exercise states its difficulty first: ``:::{exercise} ★ Title`` (★ easy, ★★ change
  and measure, ★★★ open-ended).
- Every solution begins with a plain sentence that states the answer, before any code.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from helpers import BOOK, cell_source, notebook_cells

ZH_CHAPTERS = BOOK / "zh" / "chapters"
CHAPTER_NOTEBOOKS = sorted([*(BOOK / "chapters").glob("*.ipynb"), *ZH_CHAPTERS.glob("*.ipynb")])
PAGES = sorted(
    p for p in [*BOOK.rglob("*.ipynb"), *BOOK.rglob("*.md")]
    if "_build" not in p.parts and ".ipynb_checkpoints" not in p.parts)

#: A remote image: markdown ![alt](http...), <img src="http...">, or an image/figure directive.
REMOTE_IMAGE = re.compile(
    r"!\[[^\]]*\]\(\s*<?https?://[^)\s]*"
    r"|<img\b[^>]*\bsrc\s*=\s*[\"']?https?://[^\"'\s>]*"
    r"|\{(?:image|figure)\}`?\s+https?://\S*",
    re.IGNORECASE)
#: The opening line of an exercise directive, fenced by colons or backticks.
EXERCISE = re.compile(r"(?m)^(?::{3,}|`{3,})\{exercise(?:-start)?\}(.*)$")
#: A title that starts with one, two or three stars and then words.
DIFFICULTY = re.compile(r"^\s*(★{1,3})(?!★)\s+\S")
SOLUTION_START = re.compile(r"(?m)^(:{3,}|`{3,})\{solution(-start)?\}.*$")
SOLUTION_END = re.compile(r"(?m)^(?::{3,}|`{3,})\{solution-end\}")
#: Where a sentence may end: its stop, then closing quotes, brackets or emphasis.
SENTENCE_END = re.compile(r"[.。!?！？][)\]）\"'”’*_`]*$")
#: What a first paragraph may not start with: a fence, a heading, a list, a table, math, HTML.
NOT_PROSE = re.compile(r"^(```|~~~|:::|#|\||- |\* |\d+\. |\$\$|<|!\[)")
CJK = re.compile(r"[\u4e00-\u9fff]")


def page_id(path: Path) -> str:
    return str(path.relative_to(BOOK))


@pytest.mark.parametrize("path", PAGES, ids=page_id)
def test_no_page_shows_a_remote_image(path):
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".ipynb":  # markdown cells only: code may well print a URL
        text = "\n".join(cell_source(c) for c in notebook_cells(path) if c["cell_type"] == "markdown")
    found = REMOTE_IMAGE.findall(text)
    assert not found, (f"{page_id(path)} shows remote images {found}: the book reads offline, "
                       "keep the image in book/images/ (the Colab badge: ../images/colab-badge.svg)")


def exercise_titles(path: Path) -> list[tuple[int, str]]:
    """(cell index, title) of every exercise of a notebook, in order."""
    return [(i, m.group(1).strip())
            for i, cell in enumerate(notebook_cells(path)) if cell["cell_type"] == "markdown"
            for m in EXERCISE.finditer(cell_source(cell))]


@pytest.mark.parametrize("path", CHAPTER_NOTEBOOKS, ids=page_id)
def test_every_exercise_title_starts_with_its_difficulty(path):
    titles = exercise_titles(path)
    undone = [f"cell {i}: {title!r}" for i, title in titles if not DIFFICULTY.match(title)]
    assert not undone, (f"{page_id(path)}: exercises without a difficulty (★, ★★ or ★★★ "
                        f"then the title): {undone}")


def solution_openings(path: Path) -> list[tuple[int, str, str]]:
    """(cell index, kind, text) of what each solution shows first.

    kind is "markdown" (text is its first paragraph), "code" or "nothing". A gated
    solution (``solution-start`` ... ``solution-end``) may begin in the directive's own
    cell or in the cells after it; a plain ``solution`` directive holds its content.
    """
    cells = notebook_cells(path)
    found = []
    for i, cell in enumerate(cells):
        if cell["cell_type"] != "markdown":
            continue
        source = cell_source(cell)
        for match in SOLUTION_START.finditer(source):
            rest = _after_directive(source[match.end():], match.group(1), gated=bool(match.group(2)))
            if rest.strip() or not match.group(2):
                found.append((i, "markdown", _first_paragraph(rest)))
                continue
            found.append((i, *_first_gated_cell(cells[i + 1:])))
    return found


def _after_directive(rest: str, fence: str, gated: bool) -> str:
    """The solution's content after its options; a gated start's fence closes first."""
    lines = rest.split("\n")[1:]
    if gated:
        closing = next((k for k, line in enumerate(lines) if line.strip() == fence), len(lines))
        return "\n".join(lines[closing + 1:])
    content = [line for line in lines if not re.match(r"^:\w[\w-]*:", line)]
    return "\n".join(content).split("\n" + fence)[0]


def _first_gated_cell(cells: list[dict]) -> tuple[str, str]:
    for cell in cells:
        source = cell_source(cell)
        if cell["cell_type"] == "code":
            return "code", source.split("\n")[0]
        if SOLUTION_END.search(source):
            before = source[:SOLUTION_END.search(source).start()]
            return ("markdown", _first_paragraph(before)) if before.strip() else ("nothing", "")
        if source.strip():
            return "markdown", _first_paragraph(source)
    return "nothing", ""


def _first_paragraph(text: str) -> str:
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]
    return " ".join(paragraphs[0].split()) if paragraphs else ""


def is_sentence(text: str) -> bool:
    """A plain sentence: prose (not code, a list or a table) that ends with a stop."""
    if NOT_PROSE.match(text) or not SENTENCE_END.search(text):
        return False
    words = len(re.findall(r"[A-Za-z0-9]+", text)) + len(CJK.findall(text)) // 2
    return words >= 4


@pytest.mark.parametrize("path", CHAPTER_NOTEBOOKS, ids=page_id)
def test_every_solution_begins_with_a_sentence(path):
    openings = solution_openings(path)
    bad = [f"cell {i}: begins with {kind} {text[:60]!r}" for i, kind, text in openings
           if kind != "markdown" or not is_sentence(text)]
    assert not bad, (f"{page_id(path)}: solutions must begin with one plain sentence that "
                     f"states the answer, before any code: {bad}")


def test_the_rules_catch_what_they_should():
    assert REMOTE_IMAGE.search("[![Open In Colab](https://colab.research.google.com/a.svg)](x)")
    assert REMOTE_IMAGE.search('<img alt="x" src="https://example.org/a.png">')
    assert not REMOTE_IMAGE.search("[![Open In Colab](../images/colab-badge.svg)](https://colab.x)")
    assert DIFFICULTY.match(" ★★ Half an adapter") and not DIFFICULTY.match(" Half an adapter")
    assert not DIFFICULTY.match(" ★★★★ Too hard") and not DIFFICULTY.match(" ★")
    assert is_sentence("Halving the scale keeps 61 % of the answers right.")
    assert is_sentence("秩为 8 时，适配器只占 0.3 % 的参数。")
    assert is_sentence("The loss ends at {glue:text}`loss-end` (it was 2.3).")
    assert not is_sentence("```python") and not is_sentence("- one item.")
    assert not is_sentence("The code below checks it:") and not is_sentence("Yes.")
