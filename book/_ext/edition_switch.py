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

The link is a button at the top of the sidebar, under the book's title (the template
``templates/edition-switch.html``, styled by ``static/edition_switch.css``). On narrow
screens, where the theme folds the sidebar away, the same button stands above the page's
title instead.
"""

from __future__ import annotations

import html
import posixpath
from pathlib import Path

from sphinx.application import Sphinx

SOURCE_SUFFIXES = (".ipynb", ".md", ".rst")
HERE = Path(__file__).resolve().parent
#: The theme's sidebar (sphinx-book-theme's default) with the switch under the title.
SIDEBAR = ["navbar-logo.html", "edition-switch.html", "icon-links.html",
           "search-button-field.html", "sbt-sidebar-nav.html"]


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


def switch_link(app: Sphinx, pagename: str, css_class: str) -> str:
    """The ``<a>`` to the twin page: a globe icon and the other edition's name."""
    href = html.escape(switch_href(app, pagename))
    lang = html.escape(app.config.edition_switch_hreflang)
    label = html.escape(app.config.edition_switch_label)
    return (f'<a class="{css_class}" href="{href}" hreflang="{lang}" lang="{lang}">'
            f'<i class="fa-solid fa-language" aria-hidden="true"></i>{label}</a>')


def add_switch(app: Sphinx, pagename: str, templatename: str, context: dict, doctree) -> None:
    if not app.config.edition_switch_label or "body" not in context:
        return
    # The sidebar's button; the page's own copy is shown only where the sidebar is folded.
    context["edition_switch"] = switch_link(app, pagename, "edition-switch-link")
    narrow = switch_link(app, pagename, "edition-switch-link-narrow")
    context["body"] = (
        f'<div class="edition-switch edition-switch--narrow">{narrow}</div>\n'
        + context["body"])
    href = html.escape(switch_href(app, pagename))
    lang = html.escape(app.config.edition_switch_hreflang)
    context["metatags"] = context.get("metatags", "") + (
        f'\n<link rel="alternate" hreflang="{lang}" href="{href}" />')


def add_to_sidebar(app: Sphinx, config) -> None:
    """Put the switch's template in the sidebar, unless the book chose its own sidebar."""
    if not config.edition_switch_label:
        return
    config.templates_path = [*config.templates_path, str(HERE / "templates")]
    config.html_static_path = [*config.html_static_path, str(HERE / "static")]
    if not config.html_sidebars:
        config.html_sidebars = {"**": SIDEBAR}


def setup(app: Sphinx) -> dict:
    app.add_config_value("edition_switch_label", "", "html", types=[str])
    app.add_config_value("edition_switch_hreflang", "", "html", types=[str])
    app.add_config_value("edition_switch_other_source", "", "html", types=[str])
    app.add_config_value("edition_switch_other_url", "", "html", types=[str])
    app.connect("config-inited", add_to_sidebar)
    app.connect("html-page-context", add_switch)
    app.add_css_file("edition_switch.css")
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
