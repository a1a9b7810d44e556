"""Reading JSON Lines files: one JSON object per line, errors that name the line.

The evaluation sets (IFEval prompts, GSM8K problems) and the hub sources' local fixtures
are JSONL files; each reader turns the objects into its own records and reports a bad
field at the line number this module returns with each object.
"""

from __future__ import annotations

import json
import os
from typing import Any

from .errors import DataError
from .paths import resolve_path


def read_jsonl_objects(
    path: str | os.PathLike[str],
    missing: str = "no such file",
    empty: str = "the file holds no lines",
) -> list[tuple[int, dict[str, Any]]]:
    """(line number, object) for every non-blank line of a JSONL file.

    Args:
        path: the file (relative paths as in :func:`ift_tutorial.paths.resolve_path`).
        missing, empty: the messages for a missing file and for one without objects.

    Raises:
        DataError: the file is missing or empty, a line is not valid JSON, or a line
            holds something other than a JSON object; it names the file and the line.
    """
    file = resolve_path(path)
    if not file.is_file():
        raise DataError(str(file), "not a file (a folder?)" if file.exists() else missing)
    rows = []
    with file.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue  # blank lines separate nothing and hold no example
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise DataError(str(file), f"invalid JSON: {err.msg} (column {err.colno})",
                                line=lineno) from None
            if not isinstance(row, dict):
                raise DataError(str(file), "expected a JSON object", line=lineno)
            rows.append((lineno, row))
    if not rows:
        raise DataError(str(file), empty)
    return rows
