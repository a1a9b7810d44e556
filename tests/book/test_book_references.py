"""Every cross-reference in the book's prose points at something that exists.

"section 7.7", "sections 9.4 and 9.5", "§8.6" must name a numbered heading ("## 7.7 ...");
"chapter 3", "chapters 2 to 4" a chapter whose notebook exists; "Figure 2.1" a caption
("*Figure 2.1: ...") in its chapter; a link to a notebook an existing file, and a link
written "ch. N" the notebook of chapter N. Only markdown prose is read: code, inline code
and references to the article's own numbering ("the article's section 4") are skipped.
"""

from __future__ import annotations

import re
from functools import cache

import pytest
from helpers import BOOK, CAPTION, CHAPTERS, HEADING, NUM, chapter_notebooks, markdown_prose, markdown_text

JOIN = r"\s*(?:,|and|or|to|–|-)\s*"
SECTION_REF = re.compile(rf"(?:\b[Ss]ections?\s+|§\s*)({NUM}(?:{JOIN}{NUM})*)")
CHAPTER_REF = re.compile(rf"\b[Cc]hapters?\s+(\d+(?:{JOIN}\d+)*)\b")
FIGURE_REF = re.compile(rf"\bFigures?\s+({NUM}(?:{JOIN}{NUM})*)")
LINK = re.compile(r"\[([^\]]*)\]\(([^)\s]+\.ipynb)(?:#[^)]*)?\)")


@cache
def pages() -> dict[str, str]:
    """Markdown prose of every chapter notebook (by file name) and of the book's .md pages."""
    out = {}
    for path in chapter_notebooks():
        out[path.name] = markdown_text(path)
    for path in sorted(BOOK.glob("*.md")):
        out[path.name] = path.read_text(encoding="utf-8")
    return out


def chapter_of(name: str) -> str | None:
    """"7" for 07_fine_tuning.ipynb, "A" for "# Appendix: ..." or "# Appendix A: ...", "B" for
    "# Appendix B: ...", None for other pages."""
    if name.endswith(".ipynb"):
        title = pages()[name].lstrip().splitlines()[0]
        m = re.match(r"# (?:Chapter (\d+)|Appendix(?: ([A-Z]))?)", title)
        if m:
            return m.group(1) or m.group(2) or "A"
    return None


@cache
def index() -> dict[str, dict[str, set[str]]]:
    """Per chapter number: its numbered sections and its figure captions."""
    found: dict[str, dict[str, set[str]]] = {}
    for name, text in pages().items():
        chapter = chapter_of(name)
        if chapter is not None:
            prose = markdown_prose(text)
            found[chapter] = {"sections": set(HEADING.findall(prose)), "figures": set(CAPTION.findall(prose)),
                              "file": {name}}
    return found


def _numbers(group: str, pattern: str) -> list[str]:
    """All numbers in a list such as "9.4 and 9.5" or "2 to 4" (a range includes its middle)."""
    items = re.findall(pattern, group)
    if re.search(r"\bto\b|–", group) and len(items) == 2 and all(i.isdigit() for i in items):
        return [str(n) for n in range(int(items[0]), int(items[1]) + 1)]
    return items


def _about_the_article(prose: str, start: int) -> bool:
    return "article" in prose[max(0, start - 30):start]


def broken_references(name: str) -> list[str]:
    prose = markdown_prose(pages()[name])
    known = index()
    broken = []
    for m in SECTION_REF.finditer(prose):
        if _about_the_article(prose, m.start()):
            continue
        for ref in _numbers(m.group(1), NUM):
            chapter = ref.split(".")[0]
            if chapter not in known or ref not in known[chapter]["sections"]:
                broken.append(f"{m.group(0)!r}: no heading '## {ref} ...'")
    for m in CHAPTER_REF.finditer(prose):
        if _about_the_article(prose, m.start()):
            continue
        for ref in _numbers(m.group(1), r"\d+"):
            if ref not in known:
                broken.append(f"{m.group(0)!r}: there is no chapter {ref}")
    for m in FIGURE_REF.finditer(prose):
        for ref in _numbers(m.group(1), NUM):
            chapter = ref.split(".")[0]
            if chapter not in known or ref not in known[chapter]["figures"]:
                broken.append(f"{m.group(0)!r}: no caption 'Figure {ref}:' in chapter {chapter}")
    for m in LINK.finditer(prose):
        text, target = m.groups()
        file = (CHAPTERS / target).resolve() if name.endswith(".ipynb") else (BOOK / target).resolve()
        if not file.is_file():
            broken.append(f"{m.group(0)!r}: {target} does not exist")
            continue
        said = re.fullmatch(r"ch\.\s*(\d+)", text.strip())
        if said and chapter_of(file.name) != said.group(1):
            broken.append(f"{m.group(0)!r}: {target} is chapter {chapter_of(file.name)}, not {said.group(1)}")
    return broken


def test_the_index_finds_numbered_sections_and_figures():
    known = index()
    assert set(map(str, range(1, 13))) <= set(known) and "A" in known
    assert "2.1" in known["2"]["sections"] and "2.1" in known["2"]["figures"]
    assert "A.1" in known["A"]["sections"]
    assert "B.1" in known["B"]["sections"]  # Appendix B: the checkpoints


def test_a_broken_reference_is_found(monkeypatch):
    fake = dict(pages(), **{"zz_fake.ipynb": "# Chapter 99: Fake\n\nAs section 2.99 and chapters 2 to 14 show "
                            "(Figure 3.9), see [ch. 3](02_attention.ipynb); the article's section 4.4 is not ours."})
    monkeypatch.setattr(__import__(__name__), "pages", lambda: fake)
    index.cache_clear()
    try:
        found = " | ".join(broken_references("zz_fake.ipynb"))
    finally:
        index.cache_clear()
    for expected in ("2.99", "chapter 13", "chapter 14", "Figure 3.9", "is chapter 2, not 3"):
        assert expected in found, (expected, found)
    assert "4.4" not in found and "no chapter 3" not in found and "no chapter 12" not in found


@pytest.mark.parametrize("name", sorted(pages()), ids=str)
def test_every_reference_resolves(name):
    broken = broken_references(name)
    assert not broken, f"{name}: " + "; ".join(broken)
