"""The adoption `enrolldb demo` shows after its story: a Django export with every defect
kind, imported into a second scratch database, with one example row per rule.

Why in the demo: a team running the Django original asks first "what happens to our
rows?"; a few lines answer it on data that has each of the defects they may have.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

from enrolldb.demo_export import write_export
from enrolldb.dsn import connect
from enrolldb.importing import end_import, report_rows, run_import

LEARNERS = 60


def run_adoption(dsn: str, console: Console) -> None:
    """Import a generated export into the migrated, empty database ``dsn`` and show the
    summary and one changed or refused row per rule (the run is committed)."""
    console.print(
        f"\n[bold]8. Adopting a Django deployment[/]: an export of {LEARNERS} learners with "
        "every defect kind (python -m enrolldb.demo_export), imported with enrolldb import"
    )
    with tempfile.TemporaryDirectory(prefix="enrolldb-export-") as tmp:
        export = Path(tmp) / "export"
        write_export(export, LEARNERS)
        with connect(dsn) as conn:
            result = run_import(conn, export, dry_run=False)
            examples: dict[str, tuple[str, str, str]] = {}
            for row in report_rows(conn):
                what = row["rule"] or "changed " + row["changes"].split(" ")[0]
                if what not in examples:
                    examples[what] = (row["table_name"], row["id"], row["detail"] or row["changes"])
            end_import(conn)
            conn.commit()
    summary = Table(title="enrolldb import: every row's fate", title_justify="left")
    for column in ("table", "read", "imported", "changed", "refused"):
        summary.add_column(column)
    for t in (t for t in result.tables if t.read):  # the export has no history files
        summary.add_row(t.table, str(t.read), str(t.imported), str(t.changed), str(t.refused))
    console.print(summary)
    rules = Table(title="one row per rule (--report lists them all)", title_justify="left")
    rules.add_column("rule", no_wrap=True)
    rules.add_column("row")
    rules.add_column("why")
    for rule, (table, row_id, why) in sorted(examples.items()):
        rules.add_row(rule, f"{table.removeprefix('program_enrollments_')} {row_id}", why)
    console.print(rules)
