"""The test suite's own layout: helpers are shared through kits (tests/kit/, a folder's
kit.py, conftest fixtures), never by importing another test module, so that a helper
has one home and running one test module never collects another's tests."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).parent


def _test_modules_imported(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        found += [n for n in names if n.startswith("tests.") and "test_" in n.split(".")[-1]]
    return found


def test_no_test_module_imports_another_test_module() -> None:
    offenders = {
        str(path.relative_to(TESTS)): imported
        for path in sorted(TESTS.rglob("*.py"))
        if (imported := _test_modules_imported(path))
    }
    assert offenders == {}, "move the shared helpers into a kit: " + repr(offenders)


def test_the_check_sees_an_import_of_a_test_module(tmp_path: Path) -> None:
    sample = tmp_path / "test_sample.py"
    sample.write_text(
        "from tests.desktop.test_member_detail import unique\nimport tests.kit.desk\n"
    )
    assert _test_modules_imported(sample) == ["tests.desktop.test_member_detail"]
