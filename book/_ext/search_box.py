"""One search box: the sidebar's, not a second one in a header bar above it.

sphinx-book-theme has no header bar: it empties the PyData theme's navbar items and keeps
the search box in the sidebar. PyData theme 0.17 fills one of them again,
``navbar_persistent``, with a search box whenever a book does not set it itself, so the
page gains a header bar holding a second search box above the sidebar's. Setting it to
nothing keeps the book theme's layout: the sidebar's box, and the search button of the
page's top bar (the same search, for narrow screens).
"""

from __future__ import annotations

from sphinx.application import Sphinx
from sphinx.config import Config


def no_header_search(app: Sphinx, config: Config) -> None:
    """Leave the PyData header's persistent items empty unless the book set them."""
    options = dict(config.html_theme_options or {})
    options.setdefault("navbar_persistent", [])
    config.html_theme_options = options


def setup(app: Sphinx) -> dict:
    app.connect("config-inited", no_header_search)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
