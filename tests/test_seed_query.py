"""The seed's detection query (docs/compatibility-query.md), verbatim and case-insensitive,
run straight from the page on a data set with case variants (issue 9 item 11).

Why: on MySQL the verbatim query compared keys case-insensitively through the collation; here
it does not, so a learner spelled ``GT-100`` in one program and ``gt-100`` in the other is
missed by it and must be found by the form the docs tell MySQL operators to run.
"""

from __future__ import annotations

import re
from pathlib import Path

from builders import (
    add_course,
    add_program,
    add_waiting,
)
from enrolldb.compatibility import TWO_PROGRAM_QUERY, VERBATIM_TWO_PROGRAM_QUERY
from pgtypes import Conn

DOC = Path(__file__).resolve().parents[1] / "docs" / "compatibility-query.md"
SHARED = "course-v1:GTx+SEED1+2024"
OTHER = "course-v1:GTx+SEED2+2024"


def query(heading: str) -> str:
    """The first ```sql block after ``heading`` in the page."""
    text = DOC.read_text(encoding="utf-8")
    section = text.split(f"## {heading}", 1)[1]
    match = re.search(r"```sql\n(.*?)```", section, re.DOTALL)
    assert match is not None, heading
    return match.group(1)


def run(db: Conn, heading: str) -> list[str]:
    db.execute("SET search_path = enrolldb, public")
    return sorted(str(r[0]) for r in db.execute(query(heading)).fetchall())


def test_verbatim_misses_case_variants_that_the_case_insensitive_form_finds(db: Conn) -> None:
    add_course(db, SHARED)
    add_course(db, OTHER)
    program_a, program_b = add_program(db), add_program(db)
    # One learner, two spellings, one shared course: the case the verbatim query misses.
    add_waiting(db, program_a, "GT-100", {SHARED: "active"})
    add_waiting(db, program_b, "gt-100", {SHARED: "inactive"})
    # Same spelling in both programs: both forms find it.
    add_waiting(db, program_a, "GT-200", {SHARED: "inactive"})
    add_waiting(db, program_b, "GT-200", {SHARED: "active"})
    # Both programs but different courses, and one program only: neither finds them.
    add_waiting(db, program_a, "GT-300", {SHARED: "active"})
    add_waiting(db, program_b, "gt-300", {OTHER: "active"})
    add_waiting(db, program_a, "GT-400", {SHARED: "active", OTHER: "active"})

    assert run(db, "The query as it was (verbatim)") == ["GT-200"]
    assert run(db, "The case-insensitive form") == ["GT-100", "GT-200", "gt-100"]


def test_the_two_forms_differ_only_in_the_key_comparison() -> None:
    verbatim = query("The query as it was (verbatim)")
    insensitive = query("The case-insensitive form")
    assert insensitive == verbatim.replace(
        "pe1.external_user_key=pe2.external_user_key",
        "lower(pe1.external_user_key)=lower(pe2.external_user_key)",
    )
    assert insensitive != verbatim


def test_the_page_shows_the_queries_doctor_and_scripts_run() -> None:
    """One text: enrolldb.compatibility holds it, the page shows it, doctor runs it."""
    assert query("The query as it was (verbatim)") == VERBATIM_TWO_PROGRAM_QUERY
    assert query("The case-insensitive form") == TWO_PROGRAM_QUERY
