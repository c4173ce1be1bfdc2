"""A bounded stress run: several workers, each on its own connection as ``enrolldb_app``,
issue random link / unlink / matriculate / registrar writes / retire calls on a small world
whose keys differ by case and by invisible characters. Afterwards every call's outcome must
be a documented one, ``check_integrity()`` must be empty, and history must explain every row
(each live row equals its latest history row).

Why: the unit tests pin each rule; this finds the combinations nobody wrote down. The seed
decides every worker's sequence of calls, so ``--seed N`` replays the same calls (with one
worker, the same run exactly; with several, the interleaving is the server's).

Run: ``make stress`` (about a minute on a scratch database), ``make stress SEED=N``, or
``python tests/stress_world.py --help``. ``tests/test_stress.py`` runs a short version in
``make test``.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import psycopg

import enrolldb
from enrolldb.calls import run_call

ORGS = ("GTx", "MITx")
COURSES = ("course-v1:GTx+S1+2024", "course-v1:GTx+S2+2024", "course-v1:GTx+S3+2024")
USERS = tuple(f"u{i}" for i in range(8))
BASE_KEYS = tuple(f"GT-{i}" for i in range(6))
PROGRAM_STATUSES = ("enrolled", "pending", "suspended", "canceled", "ended")


def key_variants(key: str) -> list[str]:
    """Spellings of one learner's key: case, bidi marks, isolates, NBSP, soft hyphen."""
    return [
        key,
        key.lower(),
        key + "\u200e",
        "\u2066" + key.lower() + "\u2069",
        "\u00a0" + key + "\u00ad",
        "\ufeff" + key.title() + "\u200b",
    ]


KEYS = [v for k in BASE_KEYS for v in key_variants(k)]

#: The API functions the workers call: every history row must name one of them.
API_FUNCTIONS = (
    "link_program_enrollments",
    "matriculate_learner",
    "unlink_program_enrollment",
    "retire_user",
    "write_program_enrollments",
    "write_program_course_enrollments",
)

#: Documented per-learner failures of linking and matriculation (docs/errors.md).
LINK_ERRORS = re.compile(
    r"^(Invalid external user key .*"
    r"|external user key .* provided multiple times"
    r"|No user found with username .*"
    r"|No program enrollment found for program uuid=.* and external student key=.*"
    r"|Program enrollment with external_student_key=.* is already linked to target account "
    r"username=.*"
    r"|NonExistentCourseError: .* does not exist"
    r"|ConflictError: .* already has an active program course enrollment for .* in program "
    r"uuid=.*"
    r"|IntegrityError: .*)$",
    re.DOTALL,
)
MATRICULATION_ERRORS = re.compile(r"^(NonExistentCourseError|ConflictError|IntegrityError): ")
PE_OUTCOMES = set(PROGRAM_STATUSES) | {
    "duplicated",
    "invalid-status",
    "conflict",
    "not-in-program",
    "invalid-key",
    "invalid-curriculum",
}
PCE_OUTCOMES = {
    "active",
    "inactive",
    "duplicated",
    "invalid-status",
    "not-in-program",
    "conflict",
    "not-found",
    "invalid-key",
}


@dataclass
class World:
    programs: dict[uuid.UUID, tuple[str, list[uuid.UUID]]]  # program -> (org, curricula)
    users: dict[str, int]


@dataclass
class Report:
    seed: int
    calls: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    unexpected: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.unexpected and not self.violations

    def summary(self) -> str:
        lines = [f"stress seed={self.seed}: {self.calls} calls"]
        lines += [f"  {name}: {n}" for name, n in sorted(self.outcomes.items())]
        lines += [f"  UNEXPECTED {u}" for u in self.unexpected[:20]]
        lines += [f"  VIOLATION {v}" for v in self.violations[:20]]
        verdict = "clean" if self.ok else f"FAILED (replay: make stress SEED={self.seed})"
        lines.append(f"stress seed={self.seed}: {verdict}")
        return "\n".join(lines)


def build_world(conn: psycopg.Connection[Any]) -> World:
    """Three programs of GTx (the first with two curricula) and one of MITx, sharing the
    same three courses; eight users. Everything else is made by the API during the run."""
    for course in COURSES:
        conn.execute(
            "INSERT INTO enrolldb.course_overviews_courseoverview (id, org) VALUES (%s, 'GTx')",
            (course,),
        )
    programs: dict[uuid.UUID, tuple[str, list[uuid.UUID]]] = {}
    for org, curricula in (("GTx", 2), ("GTx", 1), ("GTx", 1), ("MITx", 1)):
        program = uuid.uuid4()
        conn.execute(
            "INSERT INTO enrolldb.program_enrollments_program "
            "(program_uuid, authoring_organization_key) VALUES (%s, %s)",
            (program, org),
        )
        programs[program] = (org, [uuid.uuid4() for _ in range(curricula)])
    users = {}
    for name in USERS:
        row = conn.execute(
            "INSERT INTO enrolldb.auth_user (username) VALUES (%s) RETURNING id", (name,)
        ).fetchone()
        assert row is not None
        users[name] = int(row[0])
    return World(programs, users)


def _label(result: str, error: str | None) -> str:
    """An outcome label for the summary: the result, and the kind of error if any."""
    if error is None:
        return result
    kind = error.split(":")[0] if ":" in error.split(" ")[0] else " ".join(error.split()[:2])
    return f"failed ({kind})"


class Worker:
    """One connection, one random sequence of calls; records every outcome."""

    def __init__(self, dsn: str, world: World, seed: int, index: int, report: Report) -> None:
        self.conn = psycopg.connect(dsn, autocommit=True)
        self.conn.execute("SET ROLE enrolldb_app")
        self.world = world
        self.rng = random.Random(f"{seed}/{index}")
        self.index = index
        self.report = report
        self.local: Counter[str] = Counter()
        self.unexpected: list[str] = []

    # Each op returns the outcome labels of the call; raising is classified by ``step``.

    def program(self) -> uuid.UUID:
        return self.rng.choice(list(self.world.programs))

    def keys(self, most: int = 3) -> list[str]:
        return [self.rng.choice(KEYS) for _ in range(self.rng.randint(1, most))]

    def op_write_pe(self) -> list[str]:
        program = self.program()
        curricula = self.world.programs[program][1]
        requests = [
            {
                "external_user_key": key,
                "status": self.rng.choice((*PROGRAM_STATUSES, "bogus")),
                "curriculum_uuid": str(self.rng.choice(curricula)),
            }
            for key in self.keys()
        ]
        out = enrolldb.write_program_enrollments(
            self.conn, program, requests, create=True, update=self.rng.random() < 0.6
        )
        labels = []
        for request in requests:
            outcome = out.get(str(request["external_user_key"]), "<missing>")
            if outcome not in PE_OUTCOMES or (
                outcome in PROGRAM_STATUSES and outcome != request["status"]
            ):
                self.unexpected.append(f"write_program_enrollments {request} -> {outcome}")
            labels.append(outcome)
        return labels

    def op_write_pce(self) -> list[str]:
        program = self.program()
        course = self.rng.choice(COURSES)
        requests = [
            {
                "external_user_key": key,
                "status": self.rng.choice(("active", "active", "inactive", "bogus")),
                "course_staff": self.rng.choice((True, False, None, None)),
            }
            for key in self.keys()
        ]
        out = enrolldb.write_program_course_enrollments(
            self.conn, program, course, requests, create=True, update=self.rng.random() < 0.7
        )
        labels = []
        for request in requests:
            outcome = out.get(str(request["external_user_key"]), "<missing>")
            if outcome not in PCE_OUTCOMES or (
                outcome in ("active", "inactive") and outcome != request["status"]
            ):
                self.unexpected.append(f"write_program_course_enrollments {request} -> {outcome}")
            labels.append(outcome)
        return labels

    def op_link(self) -> list[str]:
        program = self.program()
        pairs = [(key, self.rng.choice((*USERS, "nobody"))) for key in self.keys()]
        form = self.rng.random()
        if form < 0.3:  # the Django contract: jsonb (a dict) or json (may repeat a key)
            if form < 0.15:
                errors = enrolldb.link_program_enrollments(self.conn, program, dict(pairs))
            else:
                errors = self.link_json(program, pairs)
            for key, error in errors.items():
                if not LINK_ERRORS.match(error):
                    self.unexpected.append(f"link_program_enrollments {key!r} -> {error}")
            return [f"json {'failed' if errors else 'ok'}"]
        labels = []
        for result in enrolldb.link(self.conn, program, pairs):
            good = (result.result in ("linked", "relinked") and result.error is None) or (
                result.result == "failed" and LINK_ERRORS.match(result.error or "") is not None
            )
            if not good:
                self.unexpected.append(f"link {result}")
            labels.append(_label(result.result, result.error))
        return labels

    def link_json(self, program: uuid.UUID, pairs: list[tuple[str, str]]) -> dict[str, str]:
        """The json overload, with the object written by hand so a key may repeat."""
        text = "{" + ", ".join(f"{json.dumps(k)}: {json.dumps(u)}" for k, u in pairs) + "}"

        def call(cur: psycopg.Cursor[Any]) -> dict[str, str]:
            cur.execute(
                "SELECT enrolldb.link_program_enrollments(%s::uuid, %s::json)", (program, text)
            )
            row = cur.fetchone()
            assert row is not None
            return {str(k): str(v) for k, v in row[0].items()}

        return run_call(self.conn, call)

    def op_unlink(self) -> list[str]:
        program = self.program()
        key = self.rng.choice(KEYS)
        row = self.conn.execute(
            "SELECT min(id) FROM enrolldb.program_enrollments_programenrollment "
            "WHERE program_uuid = %s "
            "AND lower(external_user_key) = enrolldb.comparable_external_key(%s)",
            (program, key),
        ).fetchone()
        pe_id = row[0] if row and row[0] is not None else None
        if pe_id is None:
            try:
                enrolldb.unlink_program_enrollment(self.conn, -1)
            except enrolldb.InvalidArgumentError:
                return ["unknown-id"]
            self.unexpected.append("unlink_program_enrollment(-1) did not raise 22023")
            return ["?"]
        enrolldb.unlink_program_enrollment(self.conn, int(pe_id))
        return ["unlinked"]

    def op_matriculate(self) -> list[str]:
        user = self.rng.choice(USERS)
        org = self.rng.choice(ORGS)
        key = self.rng.choice(KEYS)
        results = enrolldb.matriculate_learner(self.conn, self.world.users[user], org, key)
        labels = []
        for result in results:
            if result.error is not None and not MATRICULATION_ERRORS.match(result.error):
                self.unexpected.append(f"matriculate_learner {user} {key!r} -> {result}")
            labels.append(_label("ok", result.error))
        return labels or ["none-waiting"]

    def op_retire(self) -> list[str]:
        user = self.rng.choice(USERS)
        return ["retired" if enrolldb.retire_user(self.conn, self.world.users[user]) else "none"]

    OPS: ClassVar[dict[str, tuple[int, Callable[[Worker], list[str]]]]] = {
        "write_program_enrollments": (20, op_write_pe),
        "write_program_course_enrollments": (25, op_write_pce),
        "link": (20, op_link),
        "unlink_program_enrollment": (10, op_unlink),
        "matriculate_learner": (15, op_matriculate),
        "retire_user": (1, op_retire),
    }

    def step(self) -> None:
        names = list(self.OPS)
        name = self.rng.choices(names, weights=[self.OPS[n][0] for n in names])[0]
        try:
            labels = self.OPS[name][1](self)
        except enrolldb.TransientConflictError:
            labels = ["transient-conflict (documented, retried 4 times)"]
        except Exception as exc:  # every other exception is undocumented here
            self.unexpected.append(f"{name} raised {type(exc).__name__}: {exc}")
            labels = [f"raised {type(exc).__name__}"]
        self.local[f"calls {name}"] += 1
        for label in labels:
            self.local[f"{name}: {label}"] += 1

    def run(self, stop: Callable[[int], bool]) -> None:
        done = 0
        try:
            while not stop(done):
                self.step()
                done += 1
        finally:
            self.conn.close()


def check_world(conn: psycopg.Connection[Any]) -> list[str]:
    """check_integrity() and "history explains every row"."""
    problems = [
        f"check_integrity: {row}"
        for row in conn.execute("SELECT * FROM enrolldb.check_integrity()").fetchall()
    ]
    for live, hist in (
        (
            "program_enrollments_programenrollment",
            "program_enrollments_historicalprogramenrollment",
        ),
        (
            "program_enrollments_programcourseenrollment",
            "program_enrollments_historicalprogramcourseenrollment",
        ),
        ("student_courseenrollment", "student_courseenrollment_history"),
    ):
        rows = conn.execute(
            f"SELECT t.id FROM enrolldb.{live} AS t "
            "LEFT JOIN LATERAL ("
            f"  SELECT h.* FROM enrolldb.{hist} AS h WHERE h.id = t.id "
            "  ORDER BY h.history_id DESC LIMIT 1"
            ") AS h ON TRUE "
            "WHERE h.id IS NULL OR h.history_type = '-' OR pg_catalog.to_jsonb(t) <> "
            "pg_catalog.to_jsonb(h) - 'history_id' - 'history_date' - 'history_type' "
            "- 'history_change_reason' ORDER BY t.id"
        ).fetchall()
        problems += [f"{live} id={r[0]}: not its latest history row" for r in rows]
        # Every change was made by an API call, and says which one.
        reasons = conn.execute(
            f"SELECT DISTINCT history_change_reason FROM enrolldb.{hist} "
            "WHERE history_change_reason IS NULL OR NOT (history_change_reason = ANY(%s))",
            (list(API_FUNCTIONS),),
        ).fetchall()
        problems += [f"{hist}: change reason {r[0]!r}" for r in reasons]
    return problems


def run(
    dsn: str,
    *,
    seed: int,
    workers: int = 4,
    calls_per_worker: int | None = None,
    duration: float | None = None,
) -> Report:
    """Stress the migrated database ``dsn`` (its data is replaced by the world)."""
    report = Report(seed)
    with psycopg.connect(dsn, autocommit=True) as conn:
        world = build_world(conn)
    pool = [Worker(dsn, world, seed, i, report) for i in range(workers)]
    deadline = time.monotonic() + duration if duration is not None else None

    def stop(done: int) -> bool:
        if calls_per_worker is not None and done >= calls_per_worker:
            return True
        return deadline is not None and time.monotonic() >= deadline

    threads = [threading.Thread(target=w.run, args=(stop,), daemon=True) for w in pool]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for w in pool:
        report.outcomes.update(w.local)
        report.unexpected += w.unexpected
        report.calls += sum(n for k, n in w.local.items() if k.startswith("calls "))
    with psycopg.connect(dsn, autocommit=True) as conn:
        report.violations = check_world(conn)
    return report


def main(argv: list[str] | None = None) -> int:
    from enrolldb.dsn import resolve_dsn, scratch_database
    from enrolldb.migrate import migrate

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=None, help="replay this seed")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds (default 60)")
    parser.add_argument("--dsn", default=None, help="server to use (default: as make test)")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(1, 10**9)
    print(f"stress seed={seed} workers={args.workers} duration={args.duration}s", flush=True)
    with scratch_database(resolve_dsn(args.dsn), prefix="enrolldb_stress") as dsn:
        migrate(dsn)
        report = run(dsn, seed=seed, workers=args.workers, duration=args.duration)
    print(report.summary())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
