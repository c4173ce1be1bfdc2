"""``make bench``: linking measured side by side, in one run on one server, with targets.

Why: docs/reference.md, Qualities promises linking that is linear whatever the statistics,
and issue 8 sets ratios to hold on a 2-core machine. Every number here is a ratio of two
measurements taken in the same run, never a wall-clock limit.

Sections (sizes N from ``--sizes``, default 1k, 10k, 100k; ``make bench N=1000`` runs one):

1. Bulk link of one program (``world.load_bulk_case``, analyzed): enrolldb, the upstream
   re-enactment and the floor (``paths``), each from the same fresh state; all three must
   end with identical rows, else the run fails (exit 1). This is the CI smoke test.
2. Load then link without ANALYZE: N learners in three programs of one organization,
   autovacuum off, linked program by program right after the load. Cost per learner and
   program.
3. ``matriculate_learner`` p50/p95 next to a ``BEGIN; SELECT 1; COMMIT`` on the same
   connection, with every learner of section 2 linked, at the smallest and largest N; timed
   after ``SSO_WARMUP`` untimed sign-ins on that connection (a service's pooled connection
   is warm: its functions compiled, its plans cached).
4. Peak RSS of ``enrolldb link`` (a subprocess) on a CSV of max(N) lines, and of a
   million lines too when max(N) is 100k or more (``--cli-lines`` chooses).

Output: a table with each target and PASS/FAIL, ``bench/results/latest.json``,
``bench/results/latest.md`` (the README's table) and ``bench/results/learners_per_second.png``
(when matplotlib is installed: ``pip install -e '.[bench]'``; ``make bench`` does).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

import enrolldb
import paths
import world
from enrolldb.dsn import resolve_dsn, scratch_database

Conn = psycopg.Connection[tuple[Any, ...]]

RESULTS = Path(__file__).resolve().parent / "results"
SSO_SAMPLE = 200  # sign-ins timed per size
#: Sign-ins done on the connection before timing starts, as a service's pooled connection has
#: done many: the first calls of a session compile the functions and build their cached plans
#: (five custom plans before a generic one, one plan per trigger statement).
SSO_WARMUP = 20


@dataclass
class Report:
    server_version: str = ""
    sizes: list[int] = field(default_factory=list)
    bulk: dict[str, dict[int, float]] = field(default_factory=dict)  # path -> N -> seconds
    agree: dict[int, bool] = field(default_factory=dict)
    load_then_link: dict[int, float] = field(default_factory=dict)  # N -> us per learner-link
    sso: dict[int, dict[str, float]] = field(default_factory=dict)  # N -> p50/p95 (ms)
    cli_rss_mb: dict[int, float] = field(default_factory=dict)  # lines -> MB
    targets: list[tuple[str, str, bool | None]] = field(default_factory=list)


def section_bulk(conn: Conn, n: int, report: Report, skip_upstream_above: int, repeat: int) -> None:
    """Each path from the same fresh state; the best of ``repeat`` runs (upstream: one)."""
    program = world.program_uuid(1)
    pairs = world.link_pairs(n)
    states: dict[str, str] = {}
    for name, link in paths.PATHS.items():
        if name == "upstream" and n > skip_upstream_above:
            continue
        for _ in range(1 if name == "upstream" else repeat):
            world.reset(conn)
            world.load_bulk_case(conn, n)
            start = time.perf_counter()
            linked = link(conn, program, pairs)
            seconds = time.perf_counter() - start
            if linked != n:
                raise SystemExit(f"{name} linked {linked} of {n} learners")
            best = report.bulk.setdefault(name, {}).get(n, seconds)
            report.bulk[name][n] = min(best, seconds)
        seconds = report.bulk[name][n]
        states[name] = state_digest(conn)
        print(f"  bulk N={n:>7,} {name:<9} {seconds:8.2f} s  {n / seconds:10,.0f} learners/s")
    report.agree[n] = len(set(states.values())) == 1
    if not report.agree[n]:
        print(f"  bulk N={n:,}: the paths ended with DIFFERENT rows: {states}")


def state_digest(conn: Conn) -> str:
    digest = []
    for query in world.FINAL_STATE_QUERIES.values():
        row = conn.execute(
            f"SELECT md5(coalesce(string_agg(q::text, ';'), '')) FROM ({query}) AS q"
        ).fetchone()
        digest.append(str(row[0]) if row else "")
    return "/".join(digest)


def section_load_then_link(conn: Conn, n: int, report: Report, sso: bool) -> None:
    world.reset(conn)
    world.set_autovacuum(conn, False)
    try:
        world.load_programs(conn, n)
        pairs = world.link_pairs(n)
        start = time.perf_counter()
        for p in (1, 2, 3):
            results = enrolldb.link(conn, world.program_uuid(p), pairs)
            if any(r.result != "linked" for r in results):
                raise SystemExit(f"load-then-link N={n}: not every learner linked")
        seconds = time.perf_counter() - start
        report.load_then_link[n] = seconds / (3 * n) * 1e6
        print(f"  load-then-link N={n:>7,}: {report.load_then_link[n]:8.1f} us per learner-link")
        if sso:
            section_sso(conn, n, report)
    finally:
        world.set_autovacuum(conn, True)


def section_sso(conn: Conn, n: int, report: Report) -> None:
    """Sign-ins of learners with three waiting enrollments (two courses each), timed after
    ``SSO_WARMUP`` untimed ones on the same connection."""
    with conn.transaction():
        conn.execute(
            "INSERT INTO enrolldb.auth_user (username) "
            "SELECT 'sso_' || i FROM generate_series(1, %s) AS i",
            (SSO_WARMUP + SSO_SAMPLE,),
        )
        conn.execute(
            "INSERT INTO enrolldb.program_enrollments_programenrollment "
            "(external_user_key, program_uuid, curriculum_uuid, status) "
            "SELECT 'SSO-' || i, p.program_uuid, %s, 'enrolled' "
            "FROM generate_series(1, %s) AS i CROSS JOIN enrolldb.program_enrollments_program AS p",
            (world.CURRICULUM, SSO_WARMUP + SSO_SAMPLE),
        )
        conn.execute(
            "INSERT INTO enrolldb.program_enrollments_programcourseenrollment "
            "(program_enrollment_id, course_key, status) "
            "SELECT pe.id, pce.course_key, 'active' "
            "FROM enrolldb.program_enrollments_programenrollment AS pe "
            "JOIN LATERAL (SELECT DISTINCT x.course_key "
            "  FROM enrolldb.program_enrollments_programcourseenrollment AS x "
            "  JOIN enrolldb.program_enrollments_programenrollment AS y "
            "  ON y.id = x.program_enrollment_id "
            "  WHERE y.external_user_key = 'KEY-1' AND y.program_uuid = pe.program_uuid) AS pce "
            "ON true WHERE pe.external_user_key LIKE 'SSO-%%'",
        )
    users = conn.execute(
        "SELECT id, substr(username, 5) FROM enrolldb.auth_user WHERE username LIKE 'sso\\_%%' "
        "ORDER BY id"
    ).fetchall()
    sso_ms: list[float] = []
    one_ms: list[float] = []
    for number, (user_id, i) in enumerate(users):
        if number == SSO_WARMUP:
            sso_ms.clear()
            one_ms.clear()
        start = time.perf_counter()
        with conn.transaction():
            conn.execute("SELECT 1").fetchall()
        one_ms.append((time.perf_counter() - start) * 1e3)
        start = time.perf_counter()
        with conn.transaction():
            rows = conn.execute(
                "SELECT * FROM enrolldb.matriculate_learner(%s, %s, %s)",
                (user_id, world.ORG, f"SSO-{i}"),
            ).fetchall()
        sso_ms.append((time.perf_counter() - start) * 1e3)
        if len(rows) != 3 or any(r[2] is not None for r in rows):
            raise SystemExit(f"matriculate_learner SSO-{i}: {rows}")
    report.sso[n] = {
        "matriculate_p50": percentile(sso_ms, 50),
        "matriculate_p95": percentile(sso_ms, 95),
        "select1_p50": percentile(one_ms, 50),
        "select1_p95": percentile(one_ms, 95),
    }
    s = report.sso[n]
    print(
        f"  matriculate at {n:,} linked ({SSO_SAMPLE} sign-ins timed after {SSO_WARMUP} "
        f"untimed on the connection): p50 {s['matriculate_p50']:.2f} ms, p95 "
        f"{s['matriculate_p95']:.2f} ms; SELECT 1 transaction p50 {s['select1_p50']:.2f} ms, "
        f"p95 {s['select1_p95']:.2f} ms"
    )


def percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if values else 0.0


#: Runs argv[1:] with stdout discarded and prints its peak RSS in kilobytes; exits with its
#: exit code.
_PEAK_RSS_LAUNCHER = """
import os, sys
pid = os.fork()
if pid == 0:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.execv(sys.argv[1], sys.argv[1:])
_, status, usage = os.wait4(pid, 0)
print(usage.ru_maxrss)
sys.exit(os.waitstatus_to_exitcode(status))
"""


def section_cli_rss(conn: Conn, dsn: str, lines: int, report: Report) -> None:
    world.reset(conn)
    world.load_programs(conn, lines, programs=1)
    conn.execute("ANALYZE")
    with tempfile.TemporaryDirectory() as tmp:
        csv_path = Path(tmp) / "pairs.csv"
        with csv_path.open("w") as out:
            for key, username in world.link_pairs(lines):
                out.write(f"{key},{username}\n")
        command = [sys.executable, "-m", "enrolldb", "--dsn", dsn, "link"]
        errors_path = Path(tmp) / "stderr.txt"
        with errors_path.open("wb") as errors:
            # Through a small launcher: a child forked from this process starts with this
            # process's resident set (Linux carries the pre-exec peak into ru_maxrss), and
            # the bench holds a whole world in memory. The launcher forks the command from a
            # bare interpreter and reports the command's own peak (kilobytes on Linux).
            launcher = [sys.executable, "-c", _PEAK_RSS_LAUNCHER]
            proc = subprocess.run(
                [*launcher, *command, world.program_uuid(1), str(csv_path)],
                stdout=subprocess.PIPE,
                stderr=errors,
                check=False,
            )
        stderr = errors_path.read_text(errors="replace")
    if proc.returncode != 0:
        raise SystemExit(f"enrolldb link exited {proc.returncode}: {stderr[-2000:]}")
    report.cli_rss_mb[lines] = int(proc.stdout.decode().split()[-1]) / 1024
    print(f"  enrolldb link of a {lines:,}-line CSV: peak RSS {report.cli_rss_mb[lines]:.0f} MB")


def evaluate(report: Report) -> None:
    t = report.targets
    small = min(report.sizes)
    for n in report.sizes:
        t.append((f"paths agree at N={n:,}", "identical rows", report.agree.get(n)))
    for n in (10_000, 100_000):
        ours = report.bulk.get("enrolldb", {}).get(n)
        floor = report.bulk.get("floor", {}).get(n)
        upstream = report.bulk.get("upstream", {}).get(n)
        if ours is not None and floor is not None:
            t.append(
                (
                    f"bulk {n:,}: enrolldb / floor time",
                    f"{ours / floor:.2f}x <= 2x",
                    ours <= 2 * floor,
                )
            )
        if ours is not None and upstream is not None:
            speed = upstream / ours
            t.append((f"bulk {n:,}: learners/s vs upstream", f"{speed:.1f}x >= 30x", speed >= 30))
        if small == 1_000 and n in report.load_then_link and small in report.load_then_link:
            ratio = report.load_then_link[n] / report.load_then_link[small]
            t.append(
                (f"load-then-link {n:,}: per learner vs 1k", f"{ratio:.2f}x <= 1.5x", ratio <= 1.5)
            )
    for n, s in report.sso.items():
        ratio = s["matriculate_p95"] / s["select1_p95"]
        t.append((f"matriculate p95 at {n:,} vs SELECT 1 p95", f"{ratio:.1f}x <= 20x", ratio <= 20))
    if len(report.sso) > 1:
        lo, hi = min(report.sso), max(report.sso)
        ratio = report.sso[hi]["matriculate_p50"] / report.sso[lo]["matriculate_p50"]
        t.append((f"matriculate p50 {hi:,} vs {lo:,}", f"{ratio:.2f}x <= 1.5x", ratio <= 1.5))
    for lines, mb in report.cli_rss_mb.items():
        t.append((f"enrolldb link {lines:,}-line CSV peak RSS", f"{mb:.0f} MB < 150 MB", mb < 150))


def render(report: Report) -> str:
    lines = [
        f"PostgreSQL {report.server_version}; sizes {', '.join(f'{n:,}' for n in report.sizes)}",
        "",
    ]
    lines.append("| path | " + " | ".join(f"N={n:,}" for n in report.sizes) + " |")
    lines.append("|---|" + "---:|" * len(report.sizes))
    for name, by_n in report.bulk.items():
        cells = [
            f"{n / by_n[n]:,.0f}/s ({by_n[n]:.2f} s)" if n in by_n else "-" for n in report.sizes
        ]
        lines.append(f"| bulk link, {name} | " + " | ".join(cells) + " |")
    cells = [
        f"{report.load_then_link[n]:.0f} µs" if n in report.load_then_link else "-"
        for n in report.sizes
    ]
    lines.append("| load-then-link, no ANALYZE, per learner-link | " + " | ".join(cells) + " |")
    lines += ["", "| target | measured | result |", "|---|---|---|"]
    for name, measured, ok in report.targets:
        result = "n/a" if ok is None else ("PASS" if ok else "FAIL")
        lines.append(f"| {name} | {measured} | {result} |")
    return "\n".join(lines)


def chart(report: Report, path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, by_n in report.bulk.items():
        ns = sorted(by_n)
        ax.plot(ns, [n / by_n[n] for n in ns], marker="o", label=f"bulk link: {name}")
    if report.load_then_link:
        ns = sorted(report.load_then_link)
        ax.plot(
            ns,
            [1e6 / report.load_then_link[n] for n in ns],
            marker="s",
            linestyle="--",
            label="enrolldb, load then link, no ANALYZE",
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("learners linked (N)")
    ax.set_ylabel("learners per second")
    ax.set_title(f"enrolldb linking, PostgreSQL {report.server_version}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def parse_sizes(text: str) -> list[int]:
    sizes = sorted({int(part.replace("_", "")) for part in text.split(",") if part.strip()})
    if not sizes or sizes[0] < 10:
        raise argparse.ArgumentTypeError("sizes: positive integers (>= 10), comma separated")
    return sizes


def default_cli_lines(sizes: list[int]) -> list[int]:
    """The issue's two CSV sizes (100k and 1M lines) for a full run; a smaller run (CI's
    smoke test) measures its largest N only."""
    largest = max(sizes)
    return [largest, 1_000_000] if 100_000 <= largest < 1_000_000 else [largest]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--dsn", help="server to use (default: DATABASE_URL, PG*, 127.0.0.1)")
    parser.add_argument("--sizes", type=parse_sizes, default=[1_000, 10_000, 100_000])
    parser.add_argument(
        "--upstream-max",
        type=int,
        default=100_000,
        help="largest N for the row-by-row upstream path (it is slow)",
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="bulk runs of enrolldb and floor; best is kept"
    )
    parser.add_argument(
        "--cli-lines",
        type=parse_sizes,
        default=None,
        help="CSV sizes for the CLI's peak RSS (default: the largest N, and 1,000,000 too "
        "when that is 100,000 or more)",
    )
    parser.add_argument("--no-results", action="store_true", help="write nothing to results/")
    args = parser.parse_args(argv)
    report = Report(sizes=args.sizes)

    with scratch_database(resolve_dsn(args.dsn), prefix="enrolldb_bench") as dsn:
        enrolldb.migrate(dsn)
        with psycopg.connect(dsn, autocommit=True) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            report.server_version = str(row[0]).split()[0] if row else "?"
            print("bulk link of one program (analyzed):")
            for n in args.sizes:
                section_bulk(conn, n, report, args.upstream_max, max(1, args.repeat))
            print("load then link, three programs, no ANALYZE:")
            for n in args.sizes:
                section_load_then_link(conn, n, report, sso=n in (min(args.sizes), max(args.sizes)))
            for lines in args.cli_lines or default_cli_lines(args.sizes):
                section_cli_rss(conn, dsn, lines, report)

    evaluate(report)
    text = render(report)
    print()
    print(text)
    if not args.no_results:
        RESULTS.mkdir(exist_ok=True)
        payload = {
            "server_version": report.server_version,
            "sizes": report.sizes,
            "bulk_seconds": report.bulk,
            "paths_agree": report.agree,
            "load_then_link_us_per_learner_link": report.load_then_link,
            "matriculate_ms": report.sso,
            "cli_peak_rss_mb": report.cli_rss_mb,
            "targets": [{"target": a, "measured": b, "pass": c} for a, b, c in report.targets],
        }
        (RESULTS / "latest.json").write_text(json.dumps(payload, indent=2) + "\n")
        (RESULTS / "latest.md").write_text(text + "\n")
        if chart(report, RESULTS / "learners_per_second.png"):
            print(f"wrote {RESULTS}/latest.json, latest.md, learners_per_second.png")
        else:
            print(f"wrote {RESULTS}/latest.json, latest.md (no chart: matplotlib not installed)")
    return 0 if all(report.agree.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
