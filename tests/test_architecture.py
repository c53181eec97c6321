"""Boundaries import-linter cannot see: SQL is written only in repositories (and migrations); test modules
share helpers only through tests/support."""

from __future__ import annotations

import ast
import fnmatch
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
SOURCE = TESTS.parent / "src" / "reachout"
# Building SQL means importing these; sessions and engines (sqlalchemy.ext.asyncio) may be passed anywhere.
SQL_BUILDERS = {
    "sqlalchemy",
    "sqlalchemy.sql",
    "sqlalchemy.dialects.postgresql",
    "sqlalchemy.dialects.sqlite",
}
# By path within src/reachout: every domain's repositories and tables, the durable-work kit's repository, and
# the database plumbing (db/upsert.py builds only the dialect's INSERT for repositories to finish, db/bulk.py
# the UPDATE by primary key they hand their rows to).
ALLOWED = (
    "*/repository.py",
    "*/*_repository.py",
    "*/models.py",
    "carriers/*/repository.py",
    "carriers/*/models.py",
    "kit/jobs/repository.py",
    "db/base.py",
    "db/engine.py",
    "db/migrate.py",
    "db/upsert.py",
    "db/bulk.py",
    "tables.py",
)


def modules() -> list[Path]:
    return sorted(p for p in SOURCE.rglob("*.py") if "migrations" not in p.parts)


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(SOURCE)))
def test_sql_is_built_only_in_repositories(path: Path) -> None:
    relative = path.relative_to(SOURCE).as_posix()
    if any(
        fnmatch.fnmatchcase(relative, pattern) and relative.count("/") == pattern.count("/")
        for pattern in ALLOWED
    ):
        return
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module in SQL_BUILDERS:
            pytest.fail(f"{path.relative_to(SOURCE)} imports {node.module}; SQL belongs in a repository")
        if isinstance(node, ast.Import) and any(alias.name in SQL_BUILDERS for alias in node.names):
            pytest.fail(f"{path.relative_to(SOURCE)} imports sqlalchemy; SQL belongs in a repository")


def test_no_module_outgrows_a_readers_head() -> None:
    too_long = {
        str(p.relative_to(SOURCE)): n for p in modules() if (n := len(p.read_text().splitlines())) > 500
    }
    assert too_long == {}


# --- the suite ----------------------------------------------------------------------------------------------
# A helper imported from a test module drags in that module (and a fixture must be re-imported under a noqa
# to be found); conftest.py is pytest's to load, not a library. Shared code lives in tests.support, whose
# fixtures conftest.py registers with `pytest_plugins` (checked too, as is conftest.py itself).
SHARED = "tests.support"


def suite_modules() -> list[Path]:
    return sorted(TESTS.rglob("*.py"))


def imported_from(path: Path) -> list[str]:
    """What of tests.* `path` imports anywhere in it (modules, or names in them), and its `pytest_plugins`."""
    package = ".".join(("tests", *path.relative_to(TESTS).parent.parts))
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(filter(None, (base, node.module)))
            # `from tests import conftest` and `from tests.dialects import test_polyai` import modules.
            found.extend(f"{module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == "pytest_plugins" for t in targets):
                found.extend(str(c.value) for c in ast.walk(node.value) if isinstance(c, ast.Constant))
    return [name for name in found if name == "tests" or name.startswith("tests.")]


def shared(module: str) -> bool:
    return module == SHARED or module.startswith(SHARED + ".")


@pytest.mark.parametrize("path", suite_modules(), ids=lambda p: str(p.relative_to(TESTS)))
def test_tests_share_only_what_is_in_tests_support(path: Path) -> None:
    crossing = [module for module in imported_from(path) if not shared(module)]
    assert crossing == [], (
        f"{path.relative_to(TESTS)} imports {crossing}; move what it needs to tests/support"
    )
