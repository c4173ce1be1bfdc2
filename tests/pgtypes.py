"""Type aliases shared by the tests: defined here once, imported everywhere.

Why a module of its own: the same ``Conn`` alias used to be written out in a dozen test files
(some as ``Connection[Any]``, some as ``Connection[tuple[Any, ...]]``), and a helper typed
with one spelling then disagreed with a test typed with the other. tests/test_test_layout.py
fails if any other module assigns one of these names again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg

#: A connection with psycopg's default tuple rows (what the ``db`` and ``connect`` fixtures give).
Conn = psycopg.Connection[tuple[Any, ...]]

#: The ``connect`` fixture: ``connect(autocommit=True, role=None) -> Conn``.
Connect = Callable[..., Conn]

#: One client call, run on the connection it is handed (the concurrency tests race these).
Call = Callable[[Conn], object]

#: Rows of several tables by name, as compared before and after a call.
State = dict[str, list[tuple[Any, ...]]]

#: Every call's result and the rows after them (a race compared with a serial order).
Outcome = tuple[tuple[object, ...], State]
