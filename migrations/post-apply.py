"""yoyo post-apply hook: (re)deploy every ``sql/functions/*.sql`` file.

Why a hook and not versioned migrations: the API functions are ``CREATE OR REPLACE`` and
must always match the files in the checkout/wheel, so they are re-executed after every
migrate (``enrolldb.migrate`` calls ``run_post_apply`` even when nothing is pending,
because yoyo itself skips hooks then).

The statements come from :func:`enrolldb.resources.function_statements`, the one deploy
loop that the drift check of ``status``/``doctor`` runs too, so what is deployed and what is
compared cannot differ. That needs the ``enrolldb`` package importable (it is wherever
``enrolldb migrate`` runs; a bare ``yoyo apply`` of this directory needs it installed too).
Everything runs inside yoyo's transaction: one bad file rolls back the whole apply.
"""

from __future__ import annotations

from typing import Any

from yoyo import step

from enrolldb.resources import function_statements

__depends__: set[str] = set()


def apply_functions(conn: Any) -> None:
    """Execute each statement of each function file on yoyo's connection."""
    for path, statement in function_statements():
        cursor = conn.cursor()
        try:
            # No parameters are passed, so '%' in function bodies needs no escaping.
            cursor.execute(statement)
        except Exception as exc:
            if hasattr(exc, "add_note"):
                exc.add_note(f"while executing {path.name}")
            raise
        finally:
            cursor.close()


step(apply_functions)
