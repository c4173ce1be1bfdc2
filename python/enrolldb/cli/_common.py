"""Types shared by the command modules (kept apart to avoid import cycles)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TypeAlias

#: What ``register()`` receives: the object returned by ``add_subparsers()``.
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"

#: A command handler: gets the parsed arguments, returns the process exit code.
Handler: TypeAlias = Callable[[argparse.Namespace], int]

#: Exit code for usage/environment/database errors (1 is reserved for "ran, found problems").
EXIT_ERROR = 2
