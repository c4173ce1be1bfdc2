"""Chunks of an input read twice, so that the commands never hold a whole file.

``link`` and ``enroll`` must refuse a file with one bad line before writing anything, and
must send every occurrence of one learner's key in the same chunk (the database reports
"provided multiple times" / ``duplicated`` only for occurrences it sees in one call). Both
need the whole file; neither needs the whole file *in memory*:

- **Pass 1** (:class:`KeyIndex`) reads every line, checks it, and keeps 8 bytes per line: a
  hash of the key's comparable form, which the database computes
  (``enrolldb.comparable_external_key``, through :func:`enrolldb.linking.comparable_keys`,
  in batches; Python never canonicalises a key). Nothing is asked of the database while the
  input fits in one chunk, or once a bad line has been found.
- **Pass 2** (:func:`iter_chunks`) reads the lines again and yields chunks in input order.
  A line whose hash occurs more than once waits until the last line with that hash has been
  read and then joins the chunk together with the others. Two different keys with the same
  hash (about one chance in 30 million for a million lines) merely share a chunk, which changes
  nothing: the database still compares the keys themselves.

Memory: 8 bytes per line, plus the lines of duplicated keys between their first and last
occurrence, plus one chunk.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import psycopg

from enrolldb.linking import comparable_keys

T = TypeVar("T")

#: Keys per ``comparable_keys`` call in pass 1.
KEY_BATCH = 10_000


def _digest(comparable: str) -> int:
    """A 64-bit hash of a comparable key; 0 for an invalid key ('': never grouped, since the
    database reports an invalid key before it looks for repeated ones)."""
    if not comparable:
        return 0
    return hash(comparable) or 1  # str hashes are stable within the process: pass 2 is too


@dataclass
class KeyIndex:
    """Pass 1's memory: how many lines, and one hash per line once the input is larger than
    one chunk."""

    connection: Callable[[], psycopg.Connection[Any]]
    chunk_size: int
    count: int = 0
    digests: array[int] = field(default_factory=lambda: array("q"))
    pending: list[str] = field(default_factory=list)

    def add(self, key: str) -> None:
        """Record the next line's key (as the caller spelled it)."""
        self.count += 1
        self.pending.append(key)
        if len(self.pending) >= KEY_BATCH and self.count > self.chunk_size:
            self._flush()

    def _flush(self) -> None:
        if self.pending:
            comparable = comparable_keys(self.connection(), self.pending)
            self.digests.extend(_digest(key) for key in comparable)
            self.pending.clear()

    def plan(self) -> Plan:
        """Finish pass 1: which hashes occur more than once, and where each last occurs."""
        if self.count <= self.chunk_size:
            self.pending.clear()
            return Plan(self.count, None, {})
        self._flush()
        repeated: set[int] = set()
        previous = 0
        for digest in sorted(self.digests):  # a transient list: 8 bytes per line + the ints
            if digest and digest == previous:
                repeated.add(digest)
            previous = digest
        last = {
            digest: position for position, digest in enumerate(self.digests) if digest in repeated
        }
        return Plan(self.count, self.digests, last)


@dataclass(frozen=True)
class Plan:
    """What pass 2 needs: the number of lines, each line's hash (None: all in one chunk),
    and the last position of every hash that occurs more than once."""

    count: int
    digests: array[int] | None
    last: dict[int, int]


@dataclass
class _Chunker(Generic[T]):
    size: int
    current: list[tuple[int, T]] = field(default_factory=list)

    def add(self, items: list[tuple[int, T]]) -> list[tuple[int, T]] | None:
        """Append ``items`` (never split); return a chunk that is complete, if any."""
        done = None
        if self.current and len(self.current) + len(items) > self.size:
            done, self.current = self.current, []
        self.current.extend(items)
        return done


def iter_chunks(plan: Plan, items: Iterable[T], size: int) -> Iterator[list[tuple[int, T]]]:
    """Pass 2: ``items`` (the same lines as pass 1, in the same order) as chunks of
    ``(position, item)``; equal keys share a chunk, which exceeds ``size`` only when one key
    alone occurs more often than that."""
    if plan.digests is None:
        chunk = list(enumerate(items))
        if chunk:
            yield chunk
        return
    chunker: _Chunker[T] = _Chunker(size)
    waiting: dict[int, list[tuple[int, T]]] = {}
    for position, item in enumerate(items):
        digest = plan.digests[position]
        last = plan.last.get(digest)
        if last is None:
            done = chunker.add([(position, item)])
        elif position < last:
            waiting.setdefault(digest, []).append((position, item))
            continue
        else:
            done = chunker.add([*waiting.pop(digest, []), (position, item)])
        if done:
            yield done
        if len(chunker.current) >= size:
            yield chunker.current
            chunker.current = []
    if chunker.current:
        yield chunker.current
