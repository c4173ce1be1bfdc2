"""Invisible characters at the ends of external keys (docs/reference.md, Schema, issue 9 item 7).

Why: ``GT-5`` and ``GT-5`` + U+200E (a left-to-right mark a spreadsheet or a bidi-aware
form adds without anyone seeing it) must be one learner. The set is Unicode White_Space
plus Default_Ignorable_Code_Point, written once in ``enrolldb.canonical_external_key``
(migration 0008). These tests check that one definition against the Unicode data, code
point by code point, and that the CHECK, the lookups of every API function and the
client's chunking all follow it. Existing rows are canonicalised by the migration, or the
migration refuses naming the rows that would collide.
"""

from __future__ import annotations

import unicodedata
import uuid

import psycopg
import pytest

import enrolldb
from builders import (
    MIGRATION_0008,
    ORG,
    add_course,
    add_identity,
    add_program,
    add_user,
    add_waiting,
    history,
    integrity,
    migrate_before,
    pe,
)
from enrolldb.migrate import migrate, status
from pgtypes import Conn

C1 = "course-v1:GTx+KEY1+2024"

#: Unicode 14.0.0, PropList.txt: White_Space.
WHITE_SPACE = [
    (0x0009, 0x000D), (0x0020, 0x0020), (0x0085, 0x0085), (0x00A0, 0x00A0),
    (0x1680, 0x1680), (0x2000, 0x200A), (0x2028, 0x2029), (0x202F, 0x202F),
    (0x205F, 0x205F), (0x3000, 0x3000),
]  # fmt: skip

#: Unicode 14.0.0, DerivedCoreProperties.txt: Default_Ignorable_Code_Point.
DEFAULT_IGNORABLE = [
    (0x00AD, 0x00AD), (0x034F, 0x034F), (0x061C, 0x061C), (0x115F, 0x1160),
    (0x17B4, 0x17B5), (0x180B, 0x180F), (0x200B, 0x200F), (0x202A, 0x202E),
    (0x2060, 0x206F), (0x3164, 0x3164), (0xFE00, 0xFE0F), (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8), (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A),
    (0xE0000, 0xE0FFF),
]  # fmt: skip

#: PropList.txt 14.0.0: Other_Default_Ignorable_Code_Point, Variation_Selector and
#: Prepended_Concatenation_Mark, the inputs of the derivation below.
OTHER_DEFAULT_IGNORABLE = [
    (0x034F, 0x034F), (0x115F, 0x1160), (0x17B4, 0x17B5), (0x2065, 0x2065),
    (0x3164, 0x3164), (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8), (0xE0000, 0xE0000),
    (0xE0002, 0xE001F), (0xE0080, 0xE00FF), (0xE01F0, 0xE0FFF),
]  # fmt: skip
VARIATION_SELECTOR = [(0x180B, 0x180D), (0x180F, 0x180F), (0xFE00, 0xFE0F), (0xE0100, 0xE01EF)]
PREPENDED_CONCATENATION_MARK = [
    (0x0600, 0x0605), (0x06DD, 0x06DD), (0x070F, 0x070F), (0x0890, 0x0891),
    (0x08E2, 0x08E2), (0x110BD, 0x110BD), (0x110CD, 0x110CD),
]  # fmt: skip

LAST = 0x10FFFF


def points(ranges: list[tuple[int, int]]) -> set[int]:
    return {cp for first, last in ranges for cp in range(first, last + 1)}


INVISIBLE = points(WHITE_SPACE) | points(DEFAULT_IGNORABLE)


def test_default_ignorable_list_follows_its_unicode_derivation() -> None:
    """DerivedCoreProperties.txt: Other_Default_Ignorable_Code_Point + Cf +
    Variation_Selector - White_Space - FFF9..FFFB - 13430..13440 - Prepended_Concatenation_Mark.
    Cf comes from Python's own Unicode database, so the list above is checked against data
    that was not copied by hand."""
    format_chars = {cp for cp in range(LAST + 1) if unicodedata.category(chr(cp)) == "Cf"}
    derived = (
        (points(OTHER_DEFAULT_IGNORABLE) | format_chars | points(VARIATION_SELECTOR))
        - points(WHITE_SPACE)
        - points([(0xFFF9, 0xFFFB), (0x13430, 0x13440)])
        - points(PREPENDED_CONCATENATION_MARK)
    )
    assert derived == points(DEFAULT_IGNORABLE)


def stripped_code_points(db: Conn, where: str) -> set[int]:
    template = {"lead": "pg_catalog.chr(cp) || '!'", "trail": "'!' || pg_catalog.chr(cp)"}[where]
    rows = db.execute(
        f"SELECT cp FROM pg_catalog.generate_series(1, {LAST}) AS cp "
        "WHERE cp NOT BETWEEN 55296 AND 57343 "  # surrogates are not characters
        f"AND enrolldb.canonical_external_key({template}) = '!'"
    ).fetchall()
    return {int(r[0]) for r in rows}


@pytest.mark.parametrize("where", ["lead", "trail"])
def test_exactly_the_invisible_set_is_stripped_at_each_end(db: Conn, where: str) -> None:
    """Every code point of U+0001..U+10FFFF: stripped if and only if it is in the set, so
    every range boundary (and the code point just outside it) is checked."""
    got = stripped_code_points(db, where)
    assert sorted(got - INVISIBLE) == []
    assert sorted(INVISIBLE - got) == []


def test_named_characters_of_the_issue(db: Conn) -> None:
    for ch in (
        "\u200e", "\u200f", "\u061c", "\u00ad", "\u2066", "\u2067", "\u2068", "\u2069",
        "\ufeff", "\u180e", "\u3164", "\u034f", "\ufe0f", "\U000e0041", "\u00a0", "\u3000",
    ):  # fmt: skip
        row = db.execute(
            "SELECT enrolldb.canonical_external_key(%s), "
            "enrolldb.is_canonical_external_key(%s), enrolldb.comparable_external_key(%s)",
            (f"{ch}{ch}GT-5{ch}", f"GT-5{ch}", f"{ch}Gt-5"),
        ).fetchone()
        assert row == ("GT-5", False, "gt-5"), hex(ord(ch))
    # Inside a key nothing is removed, and visible format-like characters stay.
    row = db.execute(
        "SELECT enrolldb.canonical_external_key(%s), enrolldb.canonical_external_key(%s)",
        ("GT\u200e-5", "\u0600GT-5"),
    ).fetchone()
    assert row == ("GT\u200e-5", "\u0600GT-5")


@pytest.mark.parametrize(
    "function", ["comparable_external_key", "is_canonical_external_key", "canonical_external_key"]
)
def test_key_functions_are_inlined_into_the_calling_statement(db: Conn, function: str) -> None:
    """Why (migration 0018): called rather than inlined, the three cost about 35 microseconds
    per key, a fifth of a 100,000-learner link. The plan's output must be the expression
    itself, with no call of any of them left in it; and NULL still gives NULL."""
    plan = db.execute(
        f"EXPLAIN (VERBOSE, FORMAT JSON) SELECT enrolldb.{function}(k) "
        "FROM pg_catalog.unnest(%s::text[]) AS t (k)",
        (["GT-5", None],),
    ).fetchone()
    assert plan is not None
    output = plan[0][0]["Plan"]["Output"]
    assert len(output) == 1
    assert "regexp_replace" in output[0]
    assert "external_key" not in output[0]
    rows = db.execute(
        f"SELECT enrolldb.{function}(k) FROM pg_catalog.unnest(%s::text[]) AS t (k)",
        ([" GT-5", None],),
    ).fetchall()
    expected = {
        "comparable_external_key": "gt-5",
        "is_canonical_external_key": False,
        "canonical_external_key": "GT-5",
    }[function]
    assert rows == [(expected,), (None,)]


def test_the_check_refuses_a_stored_key_with_an_invisible_end(db: Conn) -> None:
    program = add_program(db)
    with pytest.raises(psycopg.errors.CheckViolation) as exc:
        add_waiting(db, program, "GT-5\u200e", [])
    assert exc.value.diag.constraint_name == "programenrollment_key_canonical_ck"
    user = add_user(db, "alice")
    with pytest.raises(psycopg.errors.CheckViolation) as exc:
        db.execute(
            "INSERT INTO enrolldb.program_enrollments_learneridentity "
            "(organization_key, external_user_key, user_id) VALUES ('GTx', %s, %s)",
            ("\u2066GT-5", user),
        )
    assert exc.value.diag.constraint_name == "learneridentity_key_canonical_ck"


def test_every_api_function_treats_marked_keys_as_one_learner(db: Conn) -> None:
    add_course(db, C1)
    add_user(db, "alice")
    bob = add_user(db, "bob")
    program_a, program_b = add_program(db), add_program(db)
    curriculum = uuid.uuid4()

    # Registrar write: the marked spelling is stored canonical; a second spelling in the
    # same call is the same key.
    outcomes = enrolldb.write_program_enrollments(
        db,
        program_a,
        [
            {"external_user_key": key, "status": "enrolled", "curriculum_uuid": curriculum}
            for key in ("GT-5\u200e", "\u2068gt-5\u2069")
        ],
        create=True,
        update=False,
    )
    assert outcomes == {"GT-5\u200e": "enrolled", "\u2068gt-5\u2069": "duplicated"}
    rows = db.execute(
        "SELECT id, external_user_key FROM enrolldb.program_enrollments_programenrollment"
    ).fetchall()
    assert [r[1] for r in rows] == ["GT-5"]
    pe_a = int(rows[0][0])
    assert enrolldb.write_program_course_enrollments(
        db, program_a, C1, [{"external_user_key": "\u00adGT-5\u200f", "status": "active"}],
        create=True, update=False,
    ) == {"\u00adGT-5\u200f": "active"}  # fmt: skip

    # Link: two spellings in one call are one key (rule 2), in the Python chunking too.
    results = enrolldb.link(db, program_a, [("GT-5", "alice"), ("GT-5\u200e", "bob")], chunk_size=1)
    assert [(r.result, r.error) for r in results] == [
        ("failed", "external user key GT-5 provided multiple times"),
        ("failed", "external user key GT-5\u200e provided multiple times"),
    ]
    assert enrolldb.link(db, program_a, [("\ufeffGT-5\u061c", "alice")])[0].result == "linked"
    enrolldb.unlink_program_enrollment(db, pe_a)

    # Sign-in with a marked key finds the waiting enrollment and records the canonical key.
    pe_b = add_waiting(db, program_b, "gt-5", [])[0]
    matriculated = enrolldb.matriculate_learner(db, bob, ORG, "\u200egt-5\u200e")
    assert sorted(m.program_enrollment_id for m in matriculated) == sorted([pe_a, pe_b])
    assert all(m.error is None for m in matriculated)
    assert db.execute(
        "SELECT external_user_key FROM enrolldb.program_enrollments_learneridentity"
    ).fetchall() == [("gt-5",)]
    assert integrity(db) == []


# --- existing rows: canonicalised by the migration, or a clear refusal -------------------------


def test_migration_canonicalises_keys_with_invisible_ends(empty_db_dsn: str) -> None:
    migrate_before(empty_db_dsn, MIGRATION_0008)
    with psycopg.connect(empty_db_dsn, autocommit=True) as conn:
        add_course(conn, C1)
        alice = add_user(conn, "alice")
        program = add_program(conn)
        marked, _ = add_waiting(conn, program, "GT-5\u200e", [C1])
        plain, _ = add_waiting(conn, program, "GT-6", [C1])
        add_identity(conn, ORG, "\u2066GT-9", alice)
        plain_history = history(conn, "programenrollment", plain)

    migrate(empty_db_dsn)

    with psycopg.connect(empty_db_dsn, autocommit=True) as conn:
        assert pe(conn, marked).external_user_key == "GT-5"
        assert pe(conn, plain).external_user_key == "GT-6"
        assert history(conn, "programenrollment", plain) == plain_history
        last = history(conn, "programenrollment", marked)[-1]
        assert (last.history_type, last.history_change_reason) == ("~", MIGRATION_0008)
        assert last.row["external_user_key"] == "GT-5"
        assert conn.execute(
            "SELECT external_user_key FROM enrolldb.program_enrollments_learneridentity"
        ).fetchall() == [("GT-9",)]
        assert conn.execute(
            "SELECT lower_external_user_key FROM enrolldb.waiting_learner_active_course ORDER BY 1"
        ).fetchall() == [("gt-5",), ("gt-6",)]
        assert integrity(conn) == []


def test_migration_refuses_keys_that_would_become_one_learner(empty_db_dsn: str) -> None:
    migrate_before(empty_db_dsn, MIGRATION_0008)
    with psycopg.connect(empty_db_dsn, autocommit=True) as conn:
        program = add_program(conn)
        curriculum = uuid.uuid4()
        first, _ = add_waiting(conn, program, "GT-5", [], curriculum_uuid=curriculum)
        second, _ = add_waiting(conn, program, "gt-5\u200e", [], curriculum_uuid=curriculum)
        lone, _ = add_waiting(conn, add_program(conn), "\u200e", [])

    with pytest.raises(psycopg.errors.CheckViolation) as exc:
        migrate(empty_db_dsn)

    message = str(exc.value)
    assert f"program enrollments id={first},{second} would hold one key" in message
    assert f"program enrollment id={lone}: key" in message
    assert "is empty without its invisible characters" in message
    assert MIGRATION_0008 in status(empty_db_dsn).pending
    with psycopg.connect(empty_db_dsn, autocommit=True) as conn:
        assert pe(conn, second).external_user_key == "gt-5\u200e"  # nothing changed
