"""What a reader sees on each built chapter page, in both editions.

Needs the built book (``make book``); without it these tests skip, or fail under
``IFT_BOOK_TESTS=1`` (CI). In the cell outputs of every numbered chapter page there is no
raw progress bar (a text ``45%|`` or an HTML ``<progress>``), no step-by-step loss table,
no build message (``IFT_*`` switches), no raw number with five or more decimals, no library
warning and no machine path; and every page has a Summary section and at least three
exercises.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest
from helpers import BOOK, HTML, require

EDITIONS = {"en": HTML, "zh": HTML / "zh"}
#: The numbered chapters, from the sources: a page missing from the build is a failure.
STEMS = sorted(p.stem for p in (BOOK / "chapters").glob("*.ipynb") if re.match(r"\d\d_", p.stem))
#: One cell's output block in the HTML of a page (myst-nb's markup).
OUTPUT = re.compile(
    r'<div class="cell_output docutils container">(.*?)</div>\s*</div>\s*</div>', re.S)

#: What a reader should not see in outputs, on the raw HTML ("html") or its text ("text").
NOISE = {
    "progress lines": ("text", re.compile(r"\d+%\|")),
    "HTML progress bars": ("html", re.compile(r"<progress\b")),
    "step/loss log tables": (
        "html", re.compile(r"<th[^>]*>\s*Step\s*</th>\s*<th[^>]*>\s*Training Loss")),
    "build messages (IFT_*)": ("text", re.compile(r"\bIFT_[A-Z_]+")),
    "raw numbers (5+ decimals)": ("text", re.compile(r"(?<![\w.])\d+\.\d{5,}\b")),
    "warnings": ("text", re.compile(r"Warning|warnings\.warn")),
    "machine paths": (
        "text", re.compile(r"site-packages|/tmp/|/root/|/home/|/content/|/usr/lib")),
}
SUMMARY = re.compile(r"<h2[^>]*>[^<]*(Summary|小结|总结)")
EXERCISE_NODE = re.compile(r'class="[^"]*\bexercise\b')
EXERCISE_HEADING = re.compile(r"<h[2-4][^>]*>[^<]*(Exercise|练习)")


def outputs(page: str) -> tuple[str, str]:
    """The HTML of every cell output of a page, and its text (tags removed, entities read)."""
    raw = "".join(OUTPUT.findall(page))
    return raw, html.unescape(re.sub(r"<[^>]+>", " ", raw))


def problems(page: str) -> list[str]:
    """What a reader should not see on a page, as "N kind (first: '...')"; empty if clean."""
    raw, text = outputs(page)
    found = []
    for kind, (where, pattern) in NOISE.items():
        hits = pattern.findall(raw if where == "html" else text)
        if hits:
            found.append(f"{len(hits)} {kind} (first: {hits[0]!r})")
    if not SUMMARY.search(page):
        found.append("no Summary")
    exercises = len(EXERCISE_NODE.findall(page)) or len(EXERCISE_HEADING.findall(page))
    if exercises < 3:
        found.append(f"{exercises} exercises")
    return found


@pytest.mark.parametrize("edition", sorted(EDITIONS))
@pytest.mark.parametrize("stem", STEMS)
def test_chapter_page_shows_the_reader_nothing_raw(edition, stem):
    page = EDITIONS[edition] / "chapters" / f"{stem}.html"
    require(page.is_file(), f"{page.relative_to(BOOK)} is not built: run `make book`")
    found = problems(page.read_text(encoding="utf-8"))
    assert not found, f"{edition}/{stem}.html: " + ", ".join(found)


def test_the_scan_finds_what_it_should():
    def page(output: str, body: str = "") -> str:
        cell = (f'<div class="cell_output docutils container">{output}</div></div></div>')
        return f"<h2>Summary</h2>{body}{cell}" + '<div class="exercise admonition">' * 3

    assert problems(page("<pre>loss 0.5</pre>")) == []
    assert problems(page("<pre> 45%|####  | 9/20</pre>")) == ["1 progress lines (first: '45%|')"]
    assert problems(page("<pre>0.1234567</pre>"))[0].startswith("1 raw numbers")
    assert problems(page("<pre>see /tmp/x and IFT_QUIET_PROGRESS</pre>")) == [
        "1 build messages (IFT_*) (first: 'IFT_QUIET_PROGRESS')",
        "1 machine paths (first: '/tmp/')"]
    assert problems("<h2>小结</h2>") == ["0 exercises"]
    assert problems('<h3>Exercise 1</h3>' * 3) == ["no Summary"]
