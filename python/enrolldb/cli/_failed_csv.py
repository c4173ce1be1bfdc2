"""``--failed-csv PATH``: opened before anything is written, and never hiding a committed run.

Why: the list used to be written after the run with a plain ``open``. A path that could not
be written (a missing directory, no permission) then raised after the chunks were
committed, and the only output was ``[Errno 2] ...`` with exit 2 and no report: the
operator could not tell that the links or writes had happened. Now the destination is
opened (created, or kept as it is: nothing truncated) before the input is read, so a bad
path refuses the run with nothing written; and should writing still fail at the end (a
full disk), the report is printed all the same and says so.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import ExitStack
from typing import TextIO

from enrolldb.cli._common import Refused
from enrolldb.cli._input import csv_line
from enrolldb.dsn import one_line


def open_failed_csv(path: str | None, stack: ExitStack) -> TextIO | None:
    """The destination opened for writing (closed with ``stack``), or :class:`Refused`."""
    if not path:
        return None
    try:
        # Append mode creates the file without truncating one that exists: a run refused
        # later (bad input) leaves an earlier failed list as it was.
        return stack.enter_context(open(path, "a", encoding="utf-8", newline=""))
    except OSError as exc:
        reason = exc.strerror or one_line(exc)
        raise Refused([f"cannot write --failed-csv {path}: {reason}"]) from None


def write_failed_csv(
    out: TextIO | None, path: str, header: Sequence[str], rows: Iterable[Sequence[str]]
) -> str | None:
    """Write ``header`` and ``rows`` to ``out`` (replacing what it held); None when done,
    else the message to print after the report."""
    if out is None:
        return None
    try:
        if out.seekable():
            out.seek(0)
            out.truncate()
        out.write(",".join(header) + "\n")
        for row in rows:
            out.write(csv_line(row) + "\n")
        out.flush()
    except OSError as exc:
        return (
            f"could not write the failed lines to {path}: {exc.strerror or one_line(exc)} "
            "(the report is complete; what it lists as done stays done)"
        )
    return None
