"""The documentation needs nothing outside the repository.

Why: 0.1.0's docs cited "SPEC x.y" 88 times, a file that does not ship with the project,
and the CLI pointed at a section that did not exist. Here: no SPEC citation, no link or URL
leaving the repository, every relative link and anchor resolves, the sections the CLI names
exist, and the sample output of ``doctor`` shows the real number of migrations.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from enrolldb.migrate import load_migrations

REPO = Path(__file__).resolve().parents[1]
DOCS = sorted([REPO / "README.md", REPO / "CHANGELOG.md", *(REPO / "docs").glob("*.md")])
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)|<((?:https?|ftp)://[^>]+)>")
_URL = re.compile(r"\b(?:https?|ftp)://", re.IGNORECASE)
_HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$")


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]|<[^>]+>", lambda m: "_" if m.group(0) == "_" else "", heading)
    text = re.sub(r"[^\w\- ]", "", text.lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    found: set[str] = set()
    in_code = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            in_code = not in_code
        match = None if in_code else _HEADING.match(line)
        if match:
            found.add(slug(match.group(1)))
    return found


def ids(path: Path) -> str:
    return str(path.relative_to(REPO))


@pytest.mark.parametrize("path", DOCS, ids=ids)
def test_no_spec_citations(path: Path) -> None:
    lines = [
        f"{n}: {line.strip()}"
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if re.search(r"\bSPEC\b", line)
    ]
    assert lines == [], "cite docs/reference.md instead of SPEC"


@pytest.mark.parametrize("path", DOCS, ids=ids)
def test_no_link_leaves_the_repository(path: Path) -> None:
    urls = [
        f"{n}: {line.strip()}"
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if _URL.search(line)
    ]
    assert urls == []


@pytest.mark.parametrize("path", DOCS, ids=ids)
def test_relative_links_and_anchors_resolve(path: Path) -> None:
    broken: list[str] = []
    for match in _LINK.finditer(path.read_text(encoding="utf-8")):
        target = match.group(1) or match.group(2)
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(f"{target}: no such section")
    assert broken == []


def test_sections_the_cli_names_exist() -> None:
    named = re.findall(
        r"docs/(\w[\w-]*\.md), section '([^']+)'",
        "".join(p.read_text(encoding="utf-8") for p in (REPO / "python").rglob("*.py")),
    )
    assert named, "doctor names a section of docs/operators.md"
    for doc, section in named:
        assert slug(section) in anchors(REPO / "docs" / doc), (doc, section)


def test_doctor_sample_shows_the_migration_count() -> None:
    counts = re.findall(r"applied: (\d+), pending: 0", (REPO / "docs" / "operators.md").read_text())
    assert counts and {int(c) for c in counts} == {len(load_migrations())}


def test_reference_documents_every_function_the_roles_may_call(db: Any) -> None:
    """A function a service or reader may call is part of the contract: it has a section
    (or, for the key helpers, a signature line) in docs/reference.md."""
    callable_names = {
        str(name)
        for (name,) in db.execute(
            "SELECT DISTINCT p.proname FROM pg_proc AS p"
            " WHERE p.pronamespace = 'enrolldb'::regnamespace"
            " AND (has_function_privilege('enrolldb_app', p.oid, 'EXECUTE')"
            "   OR has_function_privilege('enrolldb_readonly', p.oid, 'EXECUTE'))"
        )
    }
    reference = (REPO / "docs" / "reference.md").read_text(encoding="utf-8")
    sections = anchors(REPO / "docs" / "reference.md")
    undocumented = sorted(
        name
        for name in callable_names
        if name not in sections and not re.search(rf"^{name}\(", reference, re.MULTILINE)
    )
    assert callable_names and undocumented == []
