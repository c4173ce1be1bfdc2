"""Reading operators' CSV files, line by line, and showing progress: shared by ``link`` and
``enroll``.

Why one reader: support staff feed both commands files from the same registrar exports, so
a BOM, CRLF endings, comments, a header and bad bytes must be handled the same way by both,
and reported by line number before anything touches the database.

Why line by line: a registrar's file can hold a million lines. The commands read it twice
(a checking pass, then a sending pass, see :mod:`enrolldb.cli._chunks`) and never hold it
whole; standard input is first copied to a temporary file so that it can be read twice too.
"""

from __future__ import annotations

import csv
import io
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

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

from enrolldb.cli._common import MAX_MESSAGES


@dataclass
class Problems:
    """The input's problems: the first :data:`MAX_MESSAGES` messages kept, the rest counted
    (a file that is wrong on every one of a million lines must not fill the memory)."""

    messages: list[str] = field(default_factory=list)
    total: int = 0

    def add(self, message: str) -> None:
        self.total += 1
        if len(self.messages) < MAX_MESSAGES:
            self.messages.append(message)

    def __bool__(self) -> bool:
        return self.total > 0

    def summary(self) -> list[str]:
        more = self.total - len(self.messages)
        return [*self.messages, f"... and {more} more"] if more else list(self.messages)


@dataclass(frozen=True)
class CsvLayout:
    """What a command's CSV looks like: the accepted header lines and the column names that
    make a first line a header (so a wrong header is refused instead of sent as data)."""

    header: tuple[str, ...]
    header_words: frozenset[str]
    #: The header without its last column (an optional one) is accepted too.
    last_optional: bool = False

    @property
    def expected(self) -> str:
        return ",".join(self.header)

    def is_header(self, names: tuple[str, ...]) -> bool:
        return names == self.header or (self.last_optional and names == self.header[:-1])


@dataclass(frozen=True)
class Source:
    """An input that can be read more than once: a file, or stdin copied to a temp file."""

    name: str
    path: Path

    def lines(self) -> Iterator[bytes]:
        with self.path.open("rb") as fh:
            yield from fh


@contextmanager
def open_source(path: str) -> Iterator[Source]:
    """The input named on the command line (``-``: stdin, copied to a temporary file in
    ``$TMPDIR`` that is removed on exit). ``OSError`` when it cannot be read."""
    if path != "-":
        with open(path, "rb"):  # fail now, with the OS's reason, not halfway through
            pass
        yield Source(path, Path(path))
        return
    with tempfile.NamedTemporaryFile(prefix="enrolldb-stdin-", suffix=".csv") as spool:
        shutil.copyfileobj(sys.stdin.buffer, spool, 1 << 20)
        spool.flush()
        yield Source("stdin", Path(spool.name))


def _normalised(fields: Sequence[str]) -> tuple[str, ...]:
    """Column names as compared: ``External User Key`` is ``external_user_key``."""
    return tuple("_".join(f.strip().lower().replace("-", " ").split()) for f in fields)


def csv_records(
    lines: Iterable[bytes], layout: CsvLayout, problems: Problems
) -> Iterator[tuple[int, list[str]]]:
    """``(line number, fields)`` of every data line of CSV input.

    Lines end with ``\\n``, ``\\r\\n`` or ``\\r`` and each is parsed on its own with the csv
    module (quoting works within a line; a quoted field cannot span lines). A UTF-8 BOM,
    blank lines and lines whose first non-blank character is ``#`` are skipped, and so is a
    first line equal to the layout's header (compared case-insensitively, spaces or hyphens
    standing for underscores); a first line that names a known column otherwise is a wrong
    header, and refused. Fields are not stripped: the database canonicalises keys and reports
    bad ones. Problems go to ``problems`` and the line is skipped.
    """
    header_possible = True
    number = 0
    for chunk in lines:
        for raw in chunk.splitlines():
            number += 1
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                problems.add(
                    f"line {number}: not valid UTF-8 ({exc.reason} at byte {exc.start + 1})"
                )
                continue
            if number == 1 and text.startswith("\ufeff"):
                text = text[1:]
            if not text.strip() or text.lstrip().startswith("#"):
                continue
            try:
                fields = next(csv.reader([text], strict=True))
            except csv.Error as exc:
                problems.add(f"line {number}: malformed CSV ({exc})")
                continue
            if header_possible:
                header_possible = False
                names = _normalised(fields)
                if layout.is_header(names):
                    continue
                if layout.header_words.intersection(names):
                    problems.add(
                        f"line {number}: a header line that is not the expected one: "
                        f"'{csv_line(fields)}'; expected '{layout.expected}' (or no header; "
                        "if this line is data, put that header line before it)"
                    )
                    continue
            yield number, fields


def csv_line(fields: Sequence[str]) -> str:
    """Fields as one CSV line that :func:`csv_records` reads back as the same fields: quoted
    where the csv module says, and a first field that would make the line a comment
    (``#...``) quoted too. Failure lists are printed this way, to be fixed and fed back."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow(fields)
    text = buffer.getvalue()
    if fields and fields[0].lstrip().startswith("#") and not text.startswith('"'):
        # Written as is (the csv module saw nothing to quote): quote it ourselves.
        text = '"' + fields[0].replace('"', '""') + '"' + text[len(fields[0]) :]
    return text


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
