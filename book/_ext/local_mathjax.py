"""Serve MathJax 3 from the built book itself, so formulas render offline.

Sphinx loads MathJax from a CDN by default. This extension instead:

1. fetches the MathJax npm package once (``npm pack``, checked by npm against the
   registry's integrity hash) into ``book/_build/.mathjax/`` (outside git);
2. copies its browser build (``es5/``) into ``_build/html/_static/mathjax/`` at the end
   of each HTML build, where ``mathjax_path: mathjax/tex-chtml.js`` in ``_config.yml``
   points.

Without npm (or without a network and without a cached copy), the build falls back to
the CDN and prints a warning: the book still builds, but needs a network to show formulas.

Run it as a script (``python book/_ext/local_mathjax.py``) to fetch the copy ahead of time.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

MATHJAX_VERSION = "3.2.2"
#: Where the fetched package is kept (book/_build is ignored by git).
CACHE_DIR = Path(__file__).resolve().parents[1] / "_build" / ".mathjax"
CDN_URL = f"https://cdn.jsdelivr.net/npm/mathjax@{MATHJAX_VERSION}/es5/tex-chtml.js"
LOCAL_PATH = "mathjax/tex-chtml.js"  # relative to _static/, as in _config.yml


def cached_es5(cache_dir: Path = CACHE_DIR) -> Path:
    """The folder that holds MathJax's browser files once fetched."""
    return cache_dir / f"mathjax-{MATHJAX_VERSION}" / "es5"


def fetch_mathjax(cache_dir: Path = CACHE_DIR) -> Path | None:
    """Return the cached ``es5/`` folder, fetching it with npm if needed; None on failure."""
    es5 = cached_es5(cache_dir)
    if (es5 / "tex-chtml.js").is_file():
        return es5
    npm = shutil.which("npm")
    if npm is None:
        print("warning: npm not found: MathJax will be loaded from a CDN", file=sys.stderr)
        return None
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir) as tmp:
        result = subprocess.run(
            [npm, "pack", f"mathjax@{MATHJAX_VERSION}", "--pack-destination", tmp, "--silent"],
            capture_output=True, text=True, check=False,
        )
        tarballs = list(Path(tmp).glob("mathjax-*.tgz"))
        if result.returncode != 0 or not tarballs:
            print(f"warning: `npm pack mathjax@{MATHJAX_VERSION}` failed "
                  f"({result.stderr.strip()[-300:]}): MathJax will be loaded from a CDN",
                  file=sys.stderr)
            return None
        unpacked = Path(tmp) / "unpacked"
        with tarfile.open(tarballs[0]) as tar:
            tar.extractall(unpacked, filter="data")  # "data": no links or paths outside
        target = es5.parent
        shutil.rmtree(target, ignore_errors=True)
        shutil.move(str(unpacked / "package"), target)
    return es5


def copy_into_build(es5: Path, outdir: Path) -> Path:
    """Copy the ``es5/`` files to ``<outdir>/_static/mathjax`` (skipped when up to date)."""
    dest = outdir / "_static" / "mathjax"
    stamp = dest / ".version"
    if stamp.is_file() and stamp.read_text() == MATHJAX_VERSION:
        return dest
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(es5, dest)
    stamp.write_text(MATHJAX_VERSION)
    return dest


def _config_inited(app, config) -> None:
    if config.mathjax_path != LOCAL_PATH:
        return  # the book chose another MathJax: leave it alone
    es5 = fetch_mathjax()
    app._local_mathjax_es5 = es5  # read back at the end of the build
    if es5 is None:
        config.mathjax_path = CDN_URL
        print(f"warning: formulas need a network: MathJax from {CDN_URL}", file=sys.stderr)


def _build_finished(app, exception) -> None:
    es5 = getattr(app, "_local_mathjax_es5", None)
    if exception is None and es5 is not None and app.builder.format == "html":
        copy_into_build(es5, Path(app.outdir))


def setup(app):
    app.connect("config-inited", _config_inited)
    app.connect("build-finished", _build_finished)
    return {"parallel_read_safe": True, "parallel_write_safe": True}


if __name__ == "__main__":
    found = fetch_mathjax()
    print(found if found else "MathJax could not be fetched (see the warning above)")
    sys.exit(0 if found else 1)
