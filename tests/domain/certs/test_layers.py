"""The package's modules import one another in one direction only, as its docstring lists."""

from __future__ import annotations

import ast
from pathlib import Path

from portal.domain import certs

# Bottom first: a module may import only modules before it in this list.
ORDER = [
    "model",
    "text",
    "der",
    "describe",
    "chain",
    "extract",
    "details",
    "strength",
    "rules",
    "inspection",
    "generate",
    "loading",
    "export",
    "keystore",
]
PACKAGE = "portal.domain.certs"
# The portal-wide vocabulary (Usage): below the whole package, importing nothing of ours.
BELOW_THE_PACKAGE = {"portal.domain.vocab"}


def _portal_imports(path: Path) -> set[str]:
    imported: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path.name}: relative import"
            modules = [node.module or ""]
        elif isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        else:
            continue
        imported.update(m for m in modules if m.split(".")[0] == "portal")
    return imported


def test_modules_import_only_modules_below_them() -> None:
    folder = Path(certs.__file__).parent
    assert sorted(p.stem for p in folder.glob("*.py") if p.stem != "__init__") == sorted(ORDER)
    for rank, module in enumerate(ORDER):
        allowed = BELOW_THE_PACKAGE | {f"{PACKAGE}.{lower}" for lower in ORDER[:rank]}
        imported = _portal_imports(folder / f"{module}.py")
        assert imported <= allowed, f"{module} imports {sorted(imported - allowed)}"


def test_the_docstring_lists_the_modules_in_order() -> None:
    listed = [
        line.split()[0]
        for line in (certs.__doc__ or "").splitlines()
        if line.startswith("    ") and line.split()[0] in ORDER
    ]
    assert listed == ORDER
