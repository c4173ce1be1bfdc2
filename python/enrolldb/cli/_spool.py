"""Per-line results kept on disk until the report, and given back in input order.

The report lists results in input order (every result with ``--format json``, the failures
in text), after the counts; a million of them do not belong in memory. Chunks come back
almost in input order (:mod:`enrolldb.cli._chunks` sends the lines of a repeated key with
its last occurrence), so a result whose position is beyond every earlier one is appended to
a temporary file, and the few that arrive late (the earlier occurrences of repeated keys)
wait in memory; reading merges the two.
"""

from __future__ import annotations

import heapq
import json
import tempfile
from collections.abc import Iterator
from types import TracebackType
from typing import Any


class ResultSpool:
    """``add(position, record)`` in any order; iterate to get the records by position."""

    def __init__(self) -> None:
        # Closed by close() / the with block: it lives as long as the run's report.
        self._file = tempfile.TemporaryFile(  # noqa: SIM115
            mode="w+", encoding="utf-8", prefix="enrolldb-"
        )
        self._late: list[tuple[int, dict[str, Any]]] = []
        self._highest = -1
        self.count = 0

    def add(self, position: int, record: dict[str, Any]) -> None:
        self.count += 1
        if position > self._highest:
            self._highest = position
            self._file.write(json.dumps([position, record], ensure_ascii=False))
            self._file.write("\n")
        else:
            self._late.append((position, record))

    def _spooled(self) -> Iterator[tuple[int, dict[str, Any]]]:
        self._file.flush()
        self._file.seek(0)
        for text in self._file:
            position, record = json.loads(text)
            yield int(position), record
        self._file.seek(0, 2)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        late = sorted(self._late, key=lambda item: item[0])
        for _, record in heapq.merge(self._spooled(), late, key=lambda item: item[0]):
            yield record

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> ResultSpool:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
