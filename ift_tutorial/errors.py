"""Errors that a user can fix; the CLI prints them as one line, never a traceback."""

from __future__ import annotations

from .paths import display_path


class UserFacingError(ValueError):
    """A problem in the user's input (data file, config, folder) with where it is."""


class DataError(UserFacingError):
    """A data file is invalid. The message names the file, the line and the field.

    ``path`` is kept as given; the message shows it without machine prefixes
    (:func:`ift_tutorial.paths.display_path`).
    """

    def __init__(self, path: str, message: str, line: int | None = None, field: str | None = None):
        self.path, self.line, self.field = str(path), line, field
        where = display_path(self.path) + (f", line {line}" if line is not None else "")
        where += f", field '{field}'" if field else ""
        super().__init__(f"{where}: {message}")


class RecordError(DataError):
    """A problem in a record of a file without lines (JSON, Parquet, a hub dataset).

    Says ``record N (0-based)`` where :class:`DataError` says ``line N``.
    """

    def __init__(self, path: str, message: str, record: int, field: str | None = None):
        super().__init__(path, message, line=None, field=field)
        self.record = record
        where = f"{display_path(self.path)}, record {record} (0-based)"
        where += f", field '{field}'" if field else ""
        self.args = (f"{where}: {message}",)
