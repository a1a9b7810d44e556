"""The built site holds both editions: English in _build/html, Chinese in _build/html/zh.

Checked on the built pages (after `make book`; skipped otherwise, failed with
IFT_BOOK_TESTS=1), in headless Chromium where a browser is needed:

- the edition switch of every page resolves, both ways, to the twin page;
- Chinese pages typeset their formulas, show their figures, open the Chinese notebooks
  on Colab, and draw their Chinese text with real glyphs (a screenshot of the page
  differs from one where every Chinese character is replaced by a code point no font has);
- figures of the Chinese edition are drawn with Chinese labels (they differ from the
  English ones) and without missing-glyph warnings;
- exercises' solutions are collapsed toggles that hold an executed code cell;
- Chinese search segments words (jieba): "注意力" is a term of the search index.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import tempfile
from pathlib import Path

import pytest

from helpers import BOOK, EXECUTED, HTML, chapter_pages, chromium, code_outputs, dump_dom, math_count, require

ZH_HTML = HTML / "zh"
EXECUTED_EN = EXECUTED / "chapters"
EXECUTED_ZH = BOOK / "_build" / "zh" / "_build" / "jupyter_execute" / "chapters"
CJK = re.compile(r"[\u4e00-\u9fff]")
SWITCH = re.compile(r'<a class="edition-switch-link" href="([^"]+)" hreflang="([^"]+)"')


@pytest.fixture(scope="module")
def site():
    require((ZH_HTML / "index.html").is_file(), "the Chinese edition is not built: run `make book`")
    return HTML


@pytest.fixture(scope="module")
def browser(site):
    require(chromium() is not None, "chromium is not installed (Debian: apt-get install chromium)")
    return chromium()


def _switch(page: Path) -> tuple[Path, str]:
    found = SWITCH.findall(page.read_text(encoding="utf-8"))
    assert len(found) == 1, f"{page.name}: {len(found)} edition switches"
    href, lang = found[0]
    return (page.parent / href).resolve(), lang


def test_every_page_switches_to_its_twin_and_back(site):
    english = sorted(p for p in site.glob("**/*.html")
                     if "zh" not in p.relative_to(site).parts and "_static" not in p.parts)
    for page in english:
        if page.name in ("index.html", "genindex.html", "search.html"):
            continue
        target, lang = _switch(page)
        assert lang == "zh-CN" and target.is_file(), f"{page.relative_to(site)} -> {target}"
        rel = page.relative_to(site)
        twin = ZH_HTML / rel
        if twin.is_file():  # a page with a twin links to it, and the twin links back
            assert target == twin.resolve()
            back, back_lang = _switch(twin)
            assert back_lang == "en" and back == page.resolve()
        else:
            assert target == (ZH_HTML / "intro.html").resolve(), rel
    assert _switch(ZH_HTML / "glossary.html")[0] == (site / "intro.html").resolve()


def test_chinese_pages_typeset_formulas_show_figures_and_open_chinese_notebooks(site, browser):
    pages = chapter_pages(ZH_HTML)
    for stem in ("02_attention", "06_qlora"):
        static = pages[stem].read_text(encoding="utf-8")
        dom = dump_dom(pages[stem])
        n = math_count(static)
        assert n > 0 and dom.count("<mjx-container") >= n and "<mjx-merror" not in dom, stem
        images = re.findall(r'<img[^>]*\ssrc="(\.\./_images/[^"]+\.(?:png|svg))"', dom)
        images = [src for src in images if "colab-badge" not in src]
        assert images and all((pages[stem].parent / s).resolve().is_file() for s in images), stem
        colab = set(re.findall(r'href="(https://colab\.research\.google\.com/github/[^"]+)"', dom))
        assert colab and all(u.endswith(f"/book/zh/chapters/{stem}.ipynb") for u in colab), colab
        assert '<html lang="zh-CN"' in static or "<html lang='zh-CN'" in static


def _figure(data: dict) -> bytes | None:
    """A figure output's picture: PNG bytes, or SVG text without its metadata (a date)."""
    if "image/svg+xml" in data:
        svg = data["image/svg+xml"]
        svg = "".join(svg) if isinstance(svg, list) else svg
        return re.sub(r"<metadata>.*?</metadata>", "", svg, flags=re.S).encode()
    if "image/png" in data:
        return base64.b64decode(data["image/png"])
    return None


def _pngs(executed: Path) -> list[bytes]:
    figures = (_figure(out.get("data", {})) for out in code_outputs(executed))
    return [figure for figure in figures if figure is not None]


def _stderr(executed: Path) -> str:
    return "".join("".join(out.get("text", "")) for out in code_outputs(executed)
                   if out.get("name") == "stderr")


def test_chinese_figures_have_chinese_labels_and_no_missing_glyphs(site):
    require(EXECUTED_ZH.is_dir(), "the Chinese edition's executed notebooks are missing")
    differing = 0
    for executed in sorted(EXECUTED_ZH.glob("*.ipynb")):
        zh, en = _pngs(executed), _pngs(EXECUTED_EN / executed.name)
        assert len(zh) == len(en), f"{executed.name}: {len(en)} English figures, {len(zh)} Chinese"
        differing += sum(a != b for a, b in zip(zh, en))
        assert not re.search(r"[Gg]lyph .*missing", _stderr(executed)), executed.name
    assert differing >= 10, f"only {differing} figures differ between the editions"


def _screenshot(browser: str, page: Path, out: Path) -> bytes:
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             "--no-first-run", "--disable-background-networking", f"--user-data-dir={profile}",
             "--window-size=1000,700", "--virtual-time-budget=5000", f"--screenshot={out}",
             page.as_uri()],
            capture_output=True, timeout=120, check=True)
    return out.read_bytes()


def test_chinese_text_is_drawn_with_real_glyphs(site, browser, tmp_path):
    page = ZH_HTML / "glossary.html"  # dense Chinese text, no figures, no formulas
    html = page.read_text(encoding="utf-8")
    assert len(CJK.findall(html)) > 500
    # Every Chinese character becomes a private-use code point, which no font draws: if the
    # page's Chinese were drawn as missing-glyph boxes too, both screenshots would match.
    boxes = CJK.sub(lambda m: chr(0xE000 + ord(m.group()) % 4096), html)
    copy = page.with_name("glossary.tofu-check.html")
    copy.write_text(boxes, encoding="utf-8")
    try:
        real = _screenshot(browser, page, tmp_path / "real.png")
        tofu = _screenshot(browser, copy, tmp_path / "tofu.png")
    finally:
        copy.unlink()
    assert real[:8] == b"\x89PNG\r\n\x1a\n" and len(real) > 10_000
    assert real != tofu, "the Chinese text renders like missing glyphs: no CJK font?"


def test_solutions_are_collapsed_toggles_with_an_executed_cell(site, browser):
    for html in (HTML, ZH_HTML):
        page = chapter_pages(html)["06_qlora"]
        dom = dump_dom(page)
        # sphinx-exercise's dropdown solution, turned into a toggle by the theme's script
        classes = re.findall(r'<div class="(solution [^"]*)" id="[^"]*solution-\d+"', dom)
        assert len(classes) >= 3, f"{page}: {len(classes)} solutions"
        assert all({"dropdown", "toggle", "toggle-hidden"} <= set(c.split()) for c in classes), classes
        buttons = re.findall(r'<button[^>]*class="toggle-button[^"]*"[^>]*aria-expanded="(\w+)"', dom)
        assert len(buttons) >= len(classes) and set(buttons) == {"false"}, buttons
        first = dom[dom.index('solution-1"'):]
        assert 'class="cell_output' in first[:20000], "no executed output inside the first solution"


def test_chinese_search_segments_words(site):
    index = (ZH_HTML / "searchindex.js").read_text(encoding="utf-8")
    terms = json.loads(re.search(r"Search\.setIndex\((.*)\)\s*$", index, re.S).group(1))["terms"]
    assert "注意力" in terms or "注意" in terms, "Chinese words are not segmented (is jieba installed?)"
    assert max((len(t) for t in terms if CJK.match(t)), default=0) < 12, "unsegmented Chinese runs"
