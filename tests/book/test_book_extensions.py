"""The book's own Sphinx extensions (book/_ext), on stand-ins of what Sphinx hands them."""

from __future__ import annotations

import sys
from types import SimpleNamespace

from helpers import BOOK

sys.path.insert(0, str(BOOK / "_ext"))
import exercise_numbers  # noqa: E402  (book/_ext is not a package)
import search_box  # noqa: E402

LABELS = {"appendix_errata": "A", "appendix_checkpoints": "B"}


def test_exercises_are_numbered_per_chapter_in_page_order():
    # What Sphinx's collector leaves: one counter across the book, in reading order.
    env = SimpleNamespace(toc_fignumbers={
        "intro": {},
        "chapters/01_llms": {"exercise": {"ex-1-2": (2,), "ex-1-1": (1,)}},
        "chapters/06_qlora": {"exercise": {"ex-6-1": (7,), "ex-6-3": (9,), "ex-6-2": (8,)},
                              "figure": {"fig": (3,)}},
        "chapters/appendix_errata": {"exercise": {"ex-A-1": (40,)}},
    })
    app = SimpleNamespace(config=SimpleNamespace(exercise_chapter_labels=LABELS))
    changed = exercise_numbers.renumber(app, env)
    numbers = env.toc_fignumbers
    assert numbers["chapters/01_llms"]["exercise"] == {"ex-1-1": (1, 1), "ex-1-2": (1, 2)}
    assert numbers["chapters/06_qlora"]["exercise"] == {
        "ex-6-1": (6, 1), "ex-6-2": (6, 2), "ex-6-3": (6, 3)}
    assert numbers["chapters/06_qlora"]["figure"] == {"fig": (3,)}  # other kinds untouched
    assert numbers["chapters/appendix_errata"]["exercise"] == {"ex-A-1": ("A", 1)}
    assert sorted(changed) == ["chapters/01_llms", "chapters/06_qlora", "chapters/appendix_errata"]
    assert exercise_numbers.renumber(app, env) == []  # a second pass changes nothing


def test_chapter_labels_come_from_the_name_or_the_config():
    assert exercise_numbers.chapter_label("chapters/12_scaling_out", LABELS) == 12
    assert exercise_numbers.chapter_label("chapters/appendix_checkpoints", LABELS) == "B"
    assert exercise_numbers.chapter_label("contributing", LABELS) is None


def test_the_header_search_box_is_dropped_unless_the_book_asks_for_it():
    config = SimpleNamespace(html_theme_options={"repository_url": "https://x"})
    search_box.no_header_search(None, config)
    assert config.html_theme_options == {"repository_url": "https://x", "navbar_persistent": []}
    config = SimpleNamespace(html_theme_options={"navbar_persistent": ["search-button-field"]})
    search_box.no_header_search(None, config)
    assert config.html_theme_options["navbar_persistent"] == ["search-button-field"]


def test_both_editions_use_the_extensions():
    import yaml

    for config_path in (BOOK / "_config.yml", BOOK / "zh" / "_config.yml"):
        sphinx = yaml.safe_load(config_path.read_text(encoding="utf-8"))["sphinx"]
        assert {"exercise_numbers", "search_box", "edition_switch"} <= set(sphinx["local_extensions"])
        assert sphinx["config"]["exercise_chapter_labels"] == LABELS, config_path
