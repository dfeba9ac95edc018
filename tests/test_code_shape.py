"""The web layer stays readable: no function under portal/web runs over 50 lines."""

from __future__ import annotations

import ast
from pathlib import Path

import portal.web

MAX_LINES = 50
WEB = Path(portal.web.__file__).parent


def test_no_web_function_is_longer_than_50_lines() -> None:
    too_long = [
        f"{path.relative_to(WEB.parent.parent)}:{node.lineno} {node.name} "
        f"({node.end_lineno - node.lineno + 1} lines)"
        for path in sorted(WEB.rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and (node.end_lineno or node.lineno) - node.lineno + 1 > MAX_LINES
    ]
    assert too_long == [], "split these into well-named helpers: " + "; ".join(too_long)
