"""Benchmark: `enrolldb import` throughput (rows/s) against the export's size.

Why: the import must take a million program course enrollments in minutes with flat memory
(COPY into staging, set-based classification, one write per table). This script measures
rows per second at several sizes, side by side in one run, so the ratio between sizes shows
whether the cost per row stays flat.

For each size N (``--learners``, e.g. 1000,10000,33000; 33,000 learners make about 110,000
program course enrollments): writes the demo export (``enrolldb.demo_export``, every defect
kind included) to a temporary directory, creates and migrates a scratch database on the
server found as ``enrolldb`` finds it, times ``run_import`` + commit, and prints rows read,
program course enrollments, seconds, rows/s, the cost per row relative to the smallest
size and the process's peak resident memory so far (it only grows: the same figure after the
largest size means the import's memory does not grow with the export; export generation
included). ``--json`` prints the same as JSON. The scratch databases are dropped (also on error).

Run: ``python bench/import_scale.py [--learners 1000,10000,33000] [--json]`` or
``make bench-import``.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from enrolldb.demo_export import write_export
from enrolldb.dsn import connect, resolve_dsn, scratch_database
from enrolldb.importing import end_import, run_import
from enrolldb.migrate import migrate


@dataclass(frozen=True)
class Run:
    learners: int
    rows: int
    program_course_enrollments: int
    seconds: float
    rows_per_second: float
    peak_rss_mb: float


def measure(server: str, learners: int) -> Run:
    with tempfile.TemporaryDirectory(prefix="enrolldb-bench-export-") as tmp:
        export = Path(tmp) / "export"
        write_export(export, learners)
        with scratch_database(server, "enrolldb_bench_import") as db:
            migrate(db)
            with connect(db) as conn:
                started = time.perf_counter()
                result = run_import(conn, export, dry_run=False)
                end_import(conn)
                conn.commit()
                seconds = time.perf_counter() - started
    rows = sum(t.read for t in result.tables)
    pces = next(
        t.read for t in result.tables if t.table == "program_enrollments_programcourseenrollment"
    )
    # ru_maxrss is in KiB on Linux.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return Run(learners, rows, pces, round(seconds, 2), round(rows / seconds), round(peak, 1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python bench/import_scale.py")
    parser.add_argument("--dsn", help="server (default: as enrolldb finds it)")
    parser.add_argument("--learners", default="1000,10000,33000", help="sizes, comma-separated")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args(argv)
    server = resolve_dsn(args.dsn)
    runs = [measure(server, int(n)) for n in args.learners.split(",")]
    if args.json:
        print(json.dumps([asdict(r) for r in runs], indent=2))
        return 0
    base = runs[0].seconds / runs[0].rows
    print(
        f"{'learners':>9} {'rows':>9} {'pce':>9} {'seconds':>8} {'rows/s':>8} {'cost/row':>9}"
        f" {'peak MB':>8}"
    )
    for r in runs:
        relative = (r.seconds / r.rows) / base
        print(
            f"{r.learners:>9} {r.rows:>9} {r.program_course_enrollments:>9} {r.seconds:>8.2f}"
            f" {r.rows_per_second:>8} {relative:>8.2f}x {r.peak_rss_mb:>8.1f}"
        )
    print("cost/row relative to the smallest size (1.00x = flat)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
