"""Declared dependencies equal imported ones (pyproject.toml versus the package's imports).

Why: 0.1.0 declared ``psycopg-pool`` without using it and imported ``sqlparse`` without
declaring it (it only worked because yoyo happens to depend on it). Both drifts are caught
here by reading the imports with ``ast``, so nothing has to be installed to see them.
"""

from __future__ import annotations

import ast
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")

REPO = Path(__file__).resolve().parents[1]
#: Code that ships in the wheel and runs at install sites.
RUNTIME_CODE = [
    *sorted((REPO / "python" / "enrolldb").rglob("*.py")),
    REPO / "migrations" / "post-apply.py",
]


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    return normalise(re.split(r"[\[<>=!~ ;]", requirement, maxsplit=1)[0])


def top_level_imports(paths: list[Path]) -> set[str]:
    names: set[str] = set()
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names


def third_party(imports: set[str], local: set[str]) -> set[str]:
    return {
        name
        for name in imports
        if name not in sys.stdlib_module_names and name not in local and name != "__future__"
    }


def distributions(imports: set[str]) -> set[str]:
    mapping = packages_distributions()
    missing = sorted(name for name in imports if name not in mapping)
    assert not missing, f"imported but not installed (so not declared either): {missing}"
    return {normalise(mapping[name][0]) for name in imports}


def project() -> dict[str, object]:
    with (REPO / "pyproject.toml").open("rb") as handle:
        document: dict[str, dict[str, object]] = tomllib.load(handle)
    return document["project"]


def test_runtime_dependencies_are_exactly_what_the_package_imports() -> None:
    declared = {requirement_name(r) for r in project()["dependencies"]}  # type: ignore[attr-defined]
    imported = distributions(third_party(top_level_imports(RUNTIME_CODE), {"enrolldb"}))
    assert imported - declared == set(), "imported but not declared in [project] dependencies"
    assert declared - imported == set(), "declared in [project] dependencies but never imported"


def test_tests_import_only_declared_packages() -> None:
    extras = project()["optional-dependencies"]["dev"]  # type: ignore[index]
    declared = {requirement_name(r) for r in project()["dependencies"]}  # type: ignore[attr-defined]
    declared |= {requirement_name(r) for r in extras}
    # pytest puts bench/ on the path too (pyproject.toml): test_plans_stale_statistics
    # imports world.
    local = {p.stem for p in (REPO / "tests").glob("*.py")} | {"enrolldb"}
    local |= {p.stem for p in (REPO / "bench").glob("*.py")}
    imported = distributions(
        third_party(top_level_imports(sorted((REPO / "tests").rglob("*.py"))), local)
    )
    assert imported - declared == set(), "tests import packages the dev extra does not declare"
