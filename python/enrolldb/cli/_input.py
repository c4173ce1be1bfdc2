"""Reading operators' CSV files and showing progress: shared by ``link`` and ``enroll``.

Why one reader: support staff feed both commands files from the same registrar exports, so
a BOM, CRLF endings, comments, an optional header and bad bytes must be handled the same
way by both, and reported by line number before anything touches the database.
"""

from __future__ import annotations

import argparse
import csv
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class InputError(Exception):
    """The input cannot be sent as given; the run is refused before touching the database."""

    def __init__(self, messages: Sequence[str]) -> None:
        super().__init__("; ".join(messages))
        self.messages = list(messages)


def chunk_size(text: str) -> int:
    """argparse type of ``--chunk-size``: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def csv_records(
    data: bytes, headers: Collection[tuple[str, ...]], errors: list[str]
) -> Iterator[tuple[int, list[str]]]:
    """``(line number, fields)`` of every data line of CSV input.

    Lines are split on ``\\n``, ``\\r\\n`` or ``\\r`` and each is parsed on its own with the
    csv module (quoting works within a line; a quoted field cannot span lines). A UTF-8 BOM,
    blank lines and lines whose first non-blank character is ``#`` are skipped, and so is a
    first line equal to one of ``headers`` (compared stripped and lower-cased). Fields are not
    stripped: the database canonicalises keys and reports bad ones. Undecodable or malformed
    lines are appended to ``errors`` and skipped.
    """
    header_possible = True
    for number, raw in enumerate(data.splitlines(), start=1):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            errors.append(f"line {number}: not valid UTF-8 ({exc.reason} at byte {exc.start + 1})")
            continue
        if number == 1 and text.startswith("\ufeff"):
            text = text[1:]
        if not text.strip() or text.lstrip().startswith("#"):
            continue
        try:
            fields = next(csv.reader([text], strict=True))
        except csv.Error as exc:
            errors.append(f"line {number}: malformed CSV ({exc})")
            continue
        if header_possible:
            header_possible = False
            if tuple(f.strip().lower() for f in fields) in headers:
                continue
        yield number, fields


@contextmanager
def progress_bar(label: str, total: int, enabled: bool) -> Iterator[Callable[[int], None]]:
    """A rich progress bar on stderr when ``enabled`` (a terminal); else a no-op advance."""
    if not enabled:
        yield lambda n: None
        return
    with Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
    ) as progress:
        task = progress.add_task(label, total=total)
        yield lambda n: progress.advance(task, n)
