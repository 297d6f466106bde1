"""The sandbox's import graph: no cycles, and nothing from the client (an independent oracle)."""

from __future__ import annotations

import ast
from pathlib import Path

import polysim_async.sandbox

PACKAGE = Path(polysim_async.sandbox.__file__).parent


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, anywhere in it (TYPE_CHECKING blocks and functions too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            if node.level == 1 and node.module is None:
                found.update("." + alias.name for alias in node.names)
            else:
                found.add(base)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def _graph() -> dict[str, set[str]]:
    modules = {p.stem: _imports(p) for p in PACKAGE.glob("*.py")}
    return {
        name: {i[1:] for i in imports if i.startswith(".") and not i.startswith("..")}
        for name, imports in modules.items()
    }


def test_no_module_of_the_sandbox_imports_the_client() -> None:
    for path in PACKAGE.glob("*.py"):
        for name in _imports(path):
            assert not name.startswith(".."), f"{path.name} imports {name} from the client"
            assert not name.startswith("polysim_async"), f"{path.name} imports {name}"


def test_the_sandbox_import_graph_has_no_cycle() -> None:
    graph = _graph()
    assert "_core" in graph and "_ws" in graph and "_exchange" in graph
    done: set[str] = set()

    def visit(node: str, stack: list[str]) -> None:
        assert node not in stack, "import cycle: " + " -> ".join([*stack, node])
        if node in done:
            return
        for nxt in sorted(graph.get(node, ())):
            visit(nxt, [*stack, node])
        done.add(node)

    for node in sorted(graph):
        visit(node, [])


def test_the_layers_point_down() -> None:
    graph = _graph()
    # The exchange and the sockets know nothing of the composed core or the routes.
    for low in ("_exchange", "_ws", "_context", "_state", "_fields", "_json", "_views"):
        assert not graph[low] & {"_core", "_app", "_trading", "_ops", "_control"}, low
    # Placement lives in one domain module used by the routes and the control API alike.
    assert "_trading" in graph["_order_routes"] and "_trading" in graph["_ops"]
    assert "_order_routes" not in graph["_ops"]
