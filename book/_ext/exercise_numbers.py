"""Number exercises per chapter: Exercise 6.1, 6.2, ... instead of 1 to 40 across the book.

sphinx-exercise registers its exercises as an enumerable node type, ``exercise``, so Sphinx
numbers them like figures: once the whole book is read, the table-of-contents collector
walks the documents in reading order and stores one counter across the book in
``env.toc_fignumbers[docname]["exercise"][id]`` (a tuple, shown joined by dots). Every place
that shows the number reads it back from there: the exercise's title (numfig's
"Exercise %s"), the title of its solution ("Solution to Exercise 6.1") and every ``{ref}`` or
``{numref}`` to it.

This extension runs right after that collector, on the same event (``env-get-updated``),
and replaces each chapter's numbers by ``(chapter, k)``: the chapter is the numeric prefix of
the document's name (``chapters/06_qlora`` is 6) or, for a document without one, its entry
in ``exercise_chapter_labels`` (the appendices: ``appendix_errata`` is A); k counts the
chapter's exercises in the order the collector met them, which is the page's order. A
document with exercises but no chapter keeps Sphinx's numbers, with a warning.
"""

from __future__ import annotations

import re

from sphinx.application import Sphinx
from sphinx.environment import BuildEnvironment
from sphinx.util import logging

logger = logging.getLogger(__name__)

FIGTYPE = "exercise"
#: "chapters/06_qlora" -> "06": the digits that start the document's own name.
CHAPTER_PREFIX = re.compile(r"^(\d+)_")


def chapter_label(docname: str, labels: dict[str, str]) -> str | int | None:
    """The chapter part of an exercise number in ``docname``: 6, "A", or None if unknown."""
    name = docname.rsplit("/", 1)[-1]
    match = CHAPTER_PREFIX.match(name)
    if match:
        return int(match.group(1))
    return labels.get(name)


def renumber(app: Sphinx, env: BuildEnvironment) -> list[str]:
    """Give every exercise the number (chapter, k); return the documents that changed."""
    changed = []
    labels = app.config.exercise_chapter_labels
    for docname, fignumbers in env.toc_fignumbers.items():
        numbers = fignumbers.get(FIGTYPE)
        if not numbers:
            continue
        chapter = chapter_label(docname, labels)
        if chapter is None:
            logger.warning(
                "exercises in %s keep book-wide numbers: the name has no chapter number "
                "and no entry in exercise_chapter_labels", docname, location=docname)
            continue
        in_order = sorted(numbers, key=numbers.__getitem__)
        renumbered = {ids: (chapter, k) for k, ids in enumerate(in_order, start=1)}
        if renumbered != numbers:
            fignumbers[FIGTYPE] = renumbered
            changed.append(docname)
    return changed


def setup(app: Sphinx) -> dict:
    app.setup_extension("sphinx_exercise")
    app.add_config_value("exercise_chapter_labels", {}, "env", types=[dict])
    # After Sphinx's own TocTreeCollector (priority 500), which assigns the numbers.
    app.connect("env-get-updated", renumber, priority=900)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
