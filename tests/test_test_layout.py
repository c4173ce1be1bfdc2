"""The shape of the test suite itself: one module of builders, one of type aliases, and no test
module imported by another.

Why: the helpers used to grow in four shapes (a scenario module, a registrar fixtures module,
builders inside test_concurrency, a ``Data`` class inside test_schema_rules that other test
files imported), with the ``Conn`` alias written out in twenty modules. Importing a test
module runs its module-level code and makes pytest's collection order matter; a helper
written twice drifts. These checks read every tests/*.py with ``ast`` (nothing is imported or
run), and each check is also run on a small made-up tree that breaks it, so a check that
stopped finding anything would fail here too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
BUILDERS = "builders"
ALIASES = "pgtypes"


def parse_tree(root: Path) -> dict[str, ast.Module]:
    """Every module under ``root`` (not in hidden or cache directories), by module name."""
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).parts
        if any(part.startswith(".") or part == "__pycache__" for part in parts):
            continue
        modules[path.stem] = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return modules


def imported_modules(tree: ast.Module) -> set[str]:
    """Top-level names of every module ``tree`` imports, at any depth of the code."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def imports_of_test_modules(modules: dict[str, ast.Module]) -> list[str]:
    """``importer imports test_x`` for every test module imported by another module."""
    return [
        f"{name} imports {imported}"
        for name, tree in sorted(modules.items())
        for imported in sorted(imported_modules(tree))
        if imported.startswith("test_") and imported in modules
    ]


def module_level_names(tree: ast.Module) -> dict[str, str]:
    """Names bound at module level (not imported): name -> "assign", "def" or "class"."""
    names: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign):
            for target in node.targets:
                for leaf in ast.walk(target):
                    if isinstance(leaf, ast.Name):
                        names[leaf.id] = "assign"
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names[node.target.id] = "assign"
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            names[node.name] = "def"
        elif isinstance(node, ast.ClassDef):
            names[node.name] = "class"
    return names


def connection_aliases(tree: ast.Module) -> list[str]:
    """Names of module-level ``X = <...>.Connection[...]`` assignments (connection aliases)."""
    found: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        if isinstance(value, ast.Subscript):
            base = value.value
            name = base.attr if isinstance(base, ast.Attribute) else getattr(base, "id", "")
            if name == "Connection":
                found.extend(t.id for t in targets if isinstance(t, ast.Name))
    return found


def alias_redefinitions(modules: dict[str, ast.Module]) -> list[str]:
    """Every module other than pgtypes that binds a name pgtypes defines, or that writes its
    own connection type alias."""
    if ALIASES not in modules:
        return [f"no {ALIASES}.py"]
    aliases = {n for n, kind in module_level_names(modules[ALIASES]).items() if kind == "assign"}
    problems = []
    for name, tree in sorted(modules.items()):
        if name == ALIASES:
            continue
        for bound, kind in sorted(module_level_names(tree).items()):
            if bound in aliases:
                problems.append(f"{name} binds {bound} ({kind}), an alias of {ALIASES}")
        problems.extend(
            f"{name} defines the connection alias {alias}" for alias in connection_aliases(tree)
        )
    return problems


def builder_redefinitions(modules: dict[str, ast.Module]) -> list[str]:
    """Every module other than builders that defines a function or class of the same name as
    one of builders' (a second copy of a builder, or a different helper under its name)."""
    if BUILDERS not in modules:
        return [f"no {BUILDERS}.py"]
    defined = {
        n for n, kind in module_level_names(modules[BUILDERS]).items() if kind in {"def", "class"}
    }
    return [
        f"{name} defines {bound} ({kind}), which {BUILDERS} defines"
        for name, tree in sorted(modules.items())
        if name != BUILDERS
        for bound, kind in sorted(module_level_names(tree).items())
        if kind in {"def", "class"} and bound in defined
    ]


# --- the suite as it is ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def suite() -> dict[str, ast.Module]:
    modules = parse_tree(TESTS)
    assert {BUILDERS, ALIASES, "conftest", "test_test_layout"} <= modules.keys()
    return modules


def test_no_test_module_is_imported_by_another_module(suite: dict[str, ast.Module]) -> None:
    assert imports_of_test_modules(suite) == []


def test_type_aliases_are_defined_once_in_pgtypes(suite: dict[str, ast.Module]) -> None:
    aliases = module_level_names(suite[ALIASES])
    assert aliases.get("Conn") == "assign" and aliases.get("Connect") == "assign"
    assert alias_redefinitions(suite) == []


def test_no_module_redefines_a_builder(suite: dict[str, ast.Module]) -> None:
    assert builder_redefinitions(suite) == []


def test_test_modules_take_their_helpers_from_builders_not_the_old_helper_modules(
    suite: dict[str, ast.Module],
) -> None:
    """scenario.py and fixtures_registrar.py were merged into builders.py."""
    assert not {"scenario", "fixtures_registrar"} & suite.keys()
    assert [
        n
        for n, tree in suite.items()
        if {"scenario", "fixtures_registrar"} & imported_modules(tree)
    ] == []


# --- each check finds what it is for -----------------------------------------------------------


def made_up(**sources: str) -> dict[str, ast.Module]:
    base = {
        ALIASES: "from typing import Any\nimport psycopg\nConn = psycopg.Connection[Any]\n",
        BUILDERS: "def add_user(conn, name):\n    return 1\n\nclass Data:\n    pass\n",
    }
    return {name: ast.parse(text) for name, text in {**base, **sources}.items()}


@pytest.mark.parametrize(
    "source",
    [
        "from test_a import helper\n",
        "import test_a\n",
        "import test_a as a\n",
        "def f():\n    from test_a import helper\n",
    ],
)
def test_the_import_check_finds_a_test_module_imported(source: str) -> None:
    tree = made_up(test_a="def helper():\n    pass\n", test_b=source)
    assert imports_of_test_modules(tree) == ["test_b imports test_a"]


def test_the_import_check_lets_helper_modules_and_libraries_through() -> None:
    tree = made_up(test_b="import builders\nfrom pgtypes import Conn\nimport test_missing\n")
    assert imports_of_test_modules(tree) == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("Conn = object\n", ["test_b binds Conn (assign), an alias of pgtypes"]),
        ("Conn: type = object\n", ["test_b binds Conn (assign), an alias of pgtypes"]),
        ("class Conn:\n    pass\n", ["test_b binds Conn (class), an alias of pgtypes"]),
        (
            "import psycopg\nDb = psycopg.Connection[tuple]\n",
            ["test_b defines the connection alias Db"],
        ),
        (
            "from psycopg import Connection\nDb = Connection[tuple]\n",
            ["test_b defines the connection alias Db"],
        ),
    ],
)
def test_the_alias_check_finds_a_second_definition(source: str, expected: list[str]) -> None:
    assert alias_redefinitions(made_up(test_b=source)) == expected


def test_the_alias_check_lets_uses_of_the_alias_through() -> None:
    source = "from pgtypes import Conn\n\ndef f(conn: Conn) -> None:\n    local: Conn = conn\n"
    assert alias_redefinitions(made_up(test_b=source)) == []


def test_the_builder_check_finds_a_second_builder() -> None:
    tree = made_up(test_b="def add_user(conn, name):\n    return 2\n", helpers="class Data: ...\n")
    assert builder_redefinitions(tree) == [
        "helpers defines Data (class), which builders defines",
        "test_b defines add_user (def), which builders defines",
    ]
    assert builder_redefinitions(made_up(test_b="def add_user_twice(): ...\n")) == []
