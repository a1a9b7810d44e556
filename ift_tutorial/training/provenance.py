"""What a run's ``metrics.json`` records about where its numbers came from.

* :func:`file_sha256`: the digest of the saved adapter's weights file, so that a shipped
  adapter can be checked against the metrics measured on it;
* :func:`library_versions` and :func:`run_versions`: the Python and library versions of the
  run (a number measured under other versions may differ in its last digits; a decoded
  answer may flip where two tokens tie).

Nothing here imports a library it reports on: versions are read from the installed
distributions' metadata.
"""

from __future__ import annotations

import hashlib
import os
import platform
from collections.abc import Iterable
from importlib import metadata

#: The distributions whose versions a run's ``metrics.json`` records (``versions``), with Python.
RUN_LIBRARIES = ("torch", "transformers", "peft", "trl", "bitsandbytes", "accelerate", "datasets",
                 "tokenizers")


def library_versions(names: Iterable[str]) -> dict[str, str | None]:
    """Installed version of each distribution, None where missing (nothing is imported).

    Example:
        >>> library_versions(["surely-not-installed-dist"])
        {'surely-not-installed-dist': None}
    """
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def run_versions() -> dict[str, str | None]:
    """``python`` and each of :data:`RUN_LIBRARIES`: the ``versions`` of a run's ``metrics.json``.

    Example:
        >>> sorted(run_versions())[:3]
        ['accelerate', 'bitsandbytes', 'datasets']
    """
    return {"python": platform.python_version(), **library_versions(RUN_LIBRARIES)}


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file's bytes, as 64 hex digits (what ``sha256sum`` prints).

    ``metrics.json`` keeps it for the adapter's weights (``adapter_sha256``): the file a
    reader downloads is the one the metrics were measured on.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
