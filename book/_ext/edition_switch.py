"""A link on every page to the same page in the book's other edition (English / 中文).

The theme has no language switch, so this extension adds one. The English book is built
into ``_build/html/`` and the Chinese one into ``_build/html/zh/``; each edition's
``_config.yml`` says where the other one lives:

- ``edition_switch_label``: the link's text ("中文" on English pages, "English" on Chinese);
- ``edition_switch_hreflang``: the other edition's language tag;
- ``edition_switch_other_source``: the other edition's source folder, relative to this
  book's folder, used to tell whether the current page has a twin there;
- ``edition_switch_other_url``: the other edition's site, relative to this site's root.

A page with a twin links to it; a page without one (the API reference, the glossary)
links to the other edition's start page. Every page also gets a ``<link rel="alternate"
hreflang=...>`` for search engines.
"""

from __future__ import annotations

import html
import posixpath
from pathlib import Path

from sphinx.application import Sphinx

SOURCE_SUFFIXES = (".ipynb", ".md", ".rst")


def twin_page(app: Sphinx, pagename: str) -> str:
    """The other edition's page for ``pagename``: the same name if it exists, else its root."""
    other = (Path(app.confdir) / app.config.edition_switch_other_source).resolve()
    if any((other / f"{pagename}{suffix}").is_file() for suffix in SOURCE_SUFFIXES):
        return pagename
    return app.config.root_doc


def switch_href(app: Sphinx, pagename: str) -> str:
    """Relative URL from ``pagename``'s HTML file to its twin in the other edition."""
    to_root = "../" * pagename.count("/")
    target = posixpath.join(app.config.edition_switch_other_url, twin_page(app, pagename))
    return posixpath.normpath(to_root + target) + ".html"


def add_switch(app: Sphinx, pagename: str, templatename: str, context: dict, doctree) -> None:
    if not app.config.edition_switch_label or "body" not in context:
        return
    href = html.escape(switch_href(app, pagename))
    lang = html.escape(app.config.edition_switch_hreflang)
    label = html.escape(app.config.edition_switch_label)
    context["body"] = (
        f'<p class="edition-switch" style="text-align: right; margin: 0;">'
        f'<a class="edition-switch-link" href="{href}" hreflang="{lang}" lang="{lang}">'
        f"{label}</a></p>\n" + context["body"])
    context["metatags"] = context.get("metatags", "") + (
        f'\n<link rel="alternate" hreflang="{lang}" href="{href}" />')


def setup(app: Sphinx) -> dict:
    app.add_config_value("edition_switch_label", "", "html", types=[str])
    app.add_config_value("edition_switch_hreflang", "", "html", types=[str])
    app.add_config_value("edition_switch_other_source", "", "html", types=[str])
    app.add_config_value("edition_switch_other_url", "", "html", types=[str])
    app.connect("html-page-context", add_switch)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
