"""Boundaries import-linter cannot see: SQL is written only in repositories (and migrations)."""

from __future__ import annotations

import ast
import fnmatch
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parent.parent / "src" / "reachout"
# Building SQL means importing these; sessions and engines (sqlalchemy.ext.asyncio) may be passed anywhere.
SQL_BUILDERS = {
    "sqlalchemy",
    "sqlalchemy.sql",
    "sqlalchemy.dialects.postgresql",
    "sqlalchemy.dialects.sqlite",
}
# By path within src/reachout: every domain's repositories and tables, the durable-work kit's repository, and
# the database plumbing (db/upsert.py builds only the dialect's INSERT for repositories to finish).
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
