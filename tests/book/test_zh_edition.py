"""The Chinese edition (book/zh) is the English book's twin: the same code, Chinese prose.

Every English chapter has a twin with byte-identical code cells (source and metadata, in
the same order); every prose cell is written in Chinese; the twin has the same numbered
sections and figures, its references resolve, its Colab badge opens the Chinese notebook,
and its table of contents lists the same chapters.
"""

from __future__ import annotations

import ast
import json
import re
import sys
from functools import cache
from pathlib import Path

import pytest
import yaml
from helpers import CAPTION as CAPTION_EN  # the English book's own
from helpers import (BOOK, HEADING, NUM, cell_source, chapter_notebooks, code_cells, code_sources,
                     markdown_prose, markdown_text, read_notebook)

CHINESE = BOOK / "zh" / "chapters"
sys.path.insert(0, str(BOOK))
import sync_zh  # noqa: E402  (book/sync_zh.py, the tool that keeps the twins in step)

CAPTION_ZH = re.compile(rf"(?m)^\*?图 ?({NUM})[:：]")
SECTION_REF_ZH = re.compile(rf"({NUM}) ?节")
CHAPTER_REF_ZH = re.compile(r"第 ?(\d+) ?章")
FIGURE_REF_ZH = re.compile(rf"图 ?({NUM})")
CJK = re.compile(r"[\u4e00-\u9fff]")


_read = cache(read_notebook)  # each notebook is read once: a test that changes one copies it first


def _prose(nb: dict) -> str:
    """A notebook's markdown without code."""
    return markdown_prose(markdown_text(nb))


def _code(nb: dict) -> list[tuple[str, dict]]:
    return [(cell_source(c), c.get("metadata", {})) for c in code_cells(nb)]


def test_every_english_chapter_has_a_chinese_twin():
    missing = [p.name for p in chapter_notebooks() if not (CHINESE / p.name).is_file()]
    extra = sorted({p.name for p in CHINESE.glob("*.ipynb")} - {p.name for p in chapter_notebooks()})
    assert not missing and not extra, f"missing twins: {missing}; twins without a chapter: {extra}"


@pytest.mark.parametrize("path", chapter_notebooks(), ids=lambda p: p.name)
def test_code_cells_are_byte_identical(path):
    english, chinese = _code(_read(path)), _code(_read(CHINESE / path.name))
    assert len(english) == len(chinese), f"{len(english)} code cells in English, {len(chinese)} in Chinese"
    for i, (en, zh) in enumerate(zip(english, chinese)):
        assert en == zh, f"code cell {i} differs: run `python book/sync_zh.py`"


@pytest.mark.parametrize("path", chapter_notebooks(), ids=lambda p: p.name)
def test_every_prose_cell_is_written_in_chinese(path):
    chinese = _read(CHINESE / path.name)
    english_ids = [c["id"] for c in _read(path)["cells"] if c["cell_type"] == "markdown"]
    assert [c["id"] for c in chinese["cells"] if c["cell_type"] == "markdown"] == english_ids
    untranslated = [c["id"] for c in chinese["cells"] if sync_zh.needs_translation(c)]
    assert not untranslated, f"markdown cells still in English: {untranslated}"


@pytest.mark.parametrize("path", chapter_notebooks(), ids=lambda p: p.name)
def test_same_numbered_sections_and_figures(path):
    english, chinese = _prose(_read(path)), _prose(_read(CHINESE / path.name))
    assert HEADING.findall(chinese) == HEADING.findall(english)
    assert CAPTION_ZH.findall(chinese) == CAPTION_EN.findall(english)


#: A glue role in prose, {glue}`key`, {glue:text}`key:.1f`, {glue:md}`key:myst`..., or a glue
#: directive, ```{glue:figure} key: the key it shows.
GLUE_ROLE = re.compile(r"\{glue(?::\w+)?\}`([^`:]+)")
GLUE_DIRECTIVE = re.compile(r"(?m)^\s*(?:`{3,}|:{3,})\{glue(?::\w+)?\}\s+(\S+)")


def _glue_shown(nb: dict) -> set[str]:
    """The glue keys a notebook's prose shows (roles and directives, wherever they are)."""
    text = markdown_text(nb)
    return {k.strip() for k in GLUE_ROLE.findall(text) + GLUE_DIRECTIVE.findall(text)}


def _glue_stored(nb: dict) -> tuple[set[str], list[re.Pattern]]:
    """The keys that the code's ``glue(key, ...)`` calls store: literal names, and a pattern
    per f-string name (``f"ratio-{name}"``); a name held in a variable (a loop over pairs)
    may be any string literal of its cell."""
    names: set[str] = set()
    patterns: list[re.Pattern] = []
    for source in code_sources(nb):
        # IPython's magics and shell escapes are not Python
        tree = ast.parse("\n".join("" if line.lstrip().startswith(("%", "!")) else line
                                   for line in source.splitlines()))
        for node in ast.walk(tree):
            func = getattr(node, "func", None)
            if not (isinstance(node, ast.Call) and node.args
                    and (getattr(func, "id", None) or getattr(func, "attr", None)) == "glue"):
                continue
            key = node.args[0]
            if isinstance(key, ast.Constant) and isinstance(key.value, str):
                names.add(key.value)
            elif isinstance(key, ast.JoinedStr):
                patterns.append(re.compile("".join(
                    re.escape(part.value) if isinstance(part, ast.Constant) else ".+"
                    for part in key.values)))
            else:
                names |= {c.value for c in ast.walk(tree)
                          if isinstance(c, ast.Constant) and isinstance(c.value, str)}
    return names, patterns


@pytest.mark.parametrize("path", chapter_notebooks(), ids=lambda p: p.name)
def test_the_twins_show_the_same_glued_numbers_and_the_code_stores_them(path):
    """A number glued into the English prose is in the Chinese prose too (the shared code
    computes it for both), and every key either edition shows is stored by a glue call:
    myst-nb would otherwise warn, or with a stale build cache show an old number."""
    english, chinese = _read(path), _read(CHINESE / path.name)
    shown_en, shown_zh = _glue_shown(english), _glue_shown(chinese)
    assert shown_en == shown_zh, (f"only in English: {sorted(shown_en - shown_zh)}; "
                                  f"only in Chinese: {sorted(shown_zh - shown_en)}")
    names, patterns = _glue_stored(english)
    unstored = sorted(k for k in shown_en | shown_zh
                      if k not in names and not any(p.fullmatch(k) for p in patterns))
    assert not unstored, f"shown in the prose but stored by no glue call of the code: {unstored}"


def _known() -> tuple[set[str], set[str], set[str]]:
    chapters, sections, figures = set(), set(), set()
    for path in chapter_notebooks():
        prose = _prose(_read(path))
        m = re.match(r"# Chapter (\d+)", prose.lstrip())
        if m:
            chapters.add(m.group(1))
        sections |= set(HEADING.findall(prose))
        figures |= set(CAPTION_EN.findall(prose))
    return chapters, sections, figures


@pytest.mark.parametrize("path", chapter_notebooks(), ids=lambda p: p.name)
def test_chinese_references_resolve(path):
    prose = _prose(_read(CHINESE / path.name))
    prose = re.sub(r"原文[^。\n]{0,12}第 ?\d+ ?[章节]", "", prose)  # the article's own numbering
    chapters, sections, figures = _known()
    bad = ([f"第 {n} 章" for n in CHAPTER_REF_ZH.findall(prose) if n not in chapters]
           + [f"{n} 节" for n in SECTION_REF_ZH.findall(prose) if n not in sections]
           + [f"图 {n}" for n in FIGURE_REF_ZH.findall(prose) if n not in figures])
    assert not bad, f"references to nothing: {bad}"


@pytest.mark.parametrize("path", chapter_notebooks(), ids=lambda p: p.name)
def test_colab_badge_opens_the_chinese_notebook(path):
    first = cell_source(_read(CHINESE / path.name)["cells"][0])
    assert CJK.search(first.splitlines()[0]), "the title is not in Chinese"
    urls = re.findall(r"https://colab\.research\.google\.com/github/\S+?\.ipynb", first)
    assert urls and all(u.endswith(f"/book/zh/chapters/{path.name}") for u in urls), urls


def _toc_files(toc_path: Path) -> list[str]:
    toc = yaml.safe_load(toc_path.read_text(encoding="utf-8"))
    files = [toc["root"]]
    for part in toc["parts"]:
        files += [c["file"] for c in part["chapters"]]
    return files


def test_the_tables_of_contents_list_the_same_chapters():
    english = [f for f in _toc_files(BOOK / "_toc.yml") if f.startswith("chapters/")]
    chinese = [f for f in _toc_files(BOOK / "zh" / "_toc.yml") if f.startswith("chapters/")]
    assert chinese == english
    for page in _toc_files(BOOK / "zh" / "_toc.yml"):
        assert any((BOOK / "zh" / f"{page}{s}").is_file() for s in (".md", ".ipynb")), page
    assert CJK.search((BOOK / "zh" / "intro.md").read_text(encoding="utf-8"))


def test_the_sync_tool_finds_a_changed_code_cell_and_puts_it_back():
    english = _read(chapter_notebooks()[0])
    chinese = json.loads(json.dumps(_read(CHINESE / chapter_notebooks()[0].name)))
    code = code_cells(chinese)[0]
    code["source"] = ["print('drifted')\n"]
    report = sync_zh.Report("x")
    twin = sync_zh.merged(english, chinese, report)
    assert report.code_updated == 1 and _code(twin) == _code(english)
    assert [c["source"] for c in twin["cells"] if c["cell_type"] == "markdown"] == [
        c["source"] for c in chinese["cells"] if c["cell_type"] == "markdown"]  # prose kept


def test_the_glossary_gives_every_term_its_english_original():
    rows = [line for line in (BOOK / "zh" / "glossary.md").read_text(encoding="utf-8").splitlines()
            if line.startswith("| ") and not line.startswith("| 中文") and "---" not in line]
    assert len(rows) >= 50
    for row in rows:
        zh, en = [c.strip() for c in row.strip("|").split("|")][:2]
        assert CJK.search(zh) and re.search(r"[A-Za-z]", en), row


def test_the_chinese_readme_gives_the_same_two_commands():
    root = BOOK.parent
    english = (root / "README.md").read_text(encoding="utf-8")
    chinese = (root / "README.zh.md").read_text(encoding="utf-8")
    commands = lambda text: re.findall(r"(?m)^(make (?:book|test))\s+#", text)  # noqa: E731
    assert commands(chinese) == commands(english) == ["make book", "make test"]
    assert "README.zh.md" in english and "(README.md)" in chinese
