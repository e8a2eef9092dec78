"""Imports point one way: providers → routing → billing → proxy, each app using only itself and the
apps below it (ARCHITECTURE.md). Every module under apps/ is read, imports inside functions and
``if TYPE_CHECKING:`` blocks included, since each is a dependency all the same."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

APPS = Path(__file__).resolve().parents[1] / "apps"
LAYERS = ("providers", "routing", "billing", "proxy")  # bottom to top


def imported_modules(path: Path, root: Path) -> Iterator[tuple[int, str]]:
    """(line, absolute dotted name) of everything ``path`` (a module under ``root``, an apps/ directory) imports."""
    package = ".".join(path.relative_to(root.parent).with_suffix("").parts[:-1])
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the module's own package
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                yield node.lineno, f"{base}.{node.module}" if node.module else base
            elif node.module:
                yield node.lineno, node.module


def upward_imports(path: Path, root: Path = APPS) -> list[str]:
    own = path.relative_to(root).parts[0]
    found = []
    for line, module in imported_modules(path, root):
        parts = module.split(".")
        imported = parts[1] if parts[0] == "apps" and len(parts) > 1 else ""
        if imported in LAYERS and LAYERS.index(imported) > LAYERS.index(own):
            found.append(f"{path.relative_to(root.parent)}:{line} imports {module}")
    return found


def test_every_app_is_a_layer():
    apps = {path.parent.name for path in APPS.glob("*/apps.py")}

    assert apps == set(LAYERS)


def test_no_module_imports_from_an_app_above_its_own():
    modules = sorted(APPS.rglob("*.py"))
    assert len(modules) > 100  # the walk found the code, not an empty directory

    assert [problem for path in modules for problem in upward_imports(path)] == []


@pytest.mark.parametrize(("source", "imported"), [
    ("from apps.billing.models import Tenant\n", "apps.billing.models"),
    ("import apps.proxy.cache.purge\n", "apps.proxy.cache.purge"),
    ("def later():\n    from apps.billing import services\n", "apps.billing"),
    ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from apps.proxy.errors import InvalidRequest\n",
     "apps.proxy.errors"),
    ("from ...billing.models import Tenant\n", "apps.billing.models"),
])
def test_it_catches_an_import_that_runs_back_up(tmp_path: Path, source: str, imported: str):
    probe = tmp_path / "apps" / "routing" / "config" / "probe.py"
    probe.parent.mkdir(parents=True)
    probe.write_text(source)

    found = upward_imports(probe, root=tmp_path / "apps")

    assert len(found) == 1 and found[0].endswith(f" imports {imported}")


def test_it_allows_imports_from_below_and_from_the_apps_own_modules(tmp_path: Path):
    probe = tmp_path / "apps" / "billing" / "probe.py"
    probe.parent.mkdir(parents=True)
    probe.write_text("from apps.providers.contracts import Usage\nfrom apps.routing.prices import Prices\n"
                     "from apps.billing.models import Tenant\nfrom .keys import KeyInfo\nimport edge_project\n")

    assert upward_imports(probe, root=tmp_path / "apps") == []
