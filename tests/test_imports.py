"""No import cycle in the package: every `import` of a fastlstm module, at module level or
inside a function, read from the source of fastlstm/ and kernels/ (installed as
fastlstm.kernels), forms a graph without cycles. A function-level import only hides a
cycle until the function first runs; the modules should still stand in layers."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DIRS = {"fastlstm": ROOT / "fastlstm", "fastlstm.kernels": ROOT / "kernels"}


def module_files():
    """{module name: path} of every .py file of the package."""
    modules = {}
    for package, directory in PACKAGE_DIRS.items():
        for path in sorted(directory.rglob("*.py")):
            parts = path.relative_to(directory).with_suffix("").parts
            if package == "fastlstm" and parts[0] == "kernels":  # the symlink to kernels/
                continue
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join((package,) + parts)] = path
    return modules


def imported_modules(tree, module, is_package, known):
    """The fastlstm modules that the statements of `tree` import, wherever they stand. A name
    imported from a package counts as its submodule when there is one, else as the package."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                anchor = anchor[:len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                child = f"{base}.{alias.name}"
                found.add(child if child in known else base)
    return {name for name in found if name in known and name != module}


def import_graph():
    modules = module_files()
    return {name: imported_modules(ast.parse(path.read_text(), str(path)), name, path.name == "__init__.py",
                                   modules)
            for name, path in modules.items()}


def find_cycle(graph):
    """One cycle of `graph` as a list of nodes (its first node repeated at the end), or None."""
    state = {}  # 1: on the current path, 2: done
    path = []

    def visit(node):
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_the_graph_sees_the_imports():
    graph = import_graph()
    assert "fastlstm.kernels.linalg_cuda" in graph["fastlstm.kernels.optim_cuda"]  # from fastlstm.kernels.x import
    assert "fastlstm.time_layers" in graph["fastlstm.models"]  # from fastlstm import x
    assert "fastlstm.dataset.ptb" in graph["fastlstm.cli"]  # from fastlstm.dataset import ptb
    assert "fastlstm.benchmark" in graph["fastlstm.cli"]  # inside a function
    assert "fastlstm.kernels.linalg_cuda" in graph["fastlstm.gpu"]  # inside a function
    assert {"fastlstm.backends.cpu", "fastlstm.backends.cuda"} <= graph["fastlstm.backends"]


def test_relative_and_function_level_imports_count():
    tree = ast.parse("from . import a\nfrom .b import c\ndef f():\n    from fastlstm.d import e\n")
    known = {"fastlstm.p", "fastlstm.p.a", "fastlstm.p.b", "fastlstm.d", "fastlstm.d.e"}
    assert imported_modules(tree, "fastlstm.p.m", False, known) == {"fastlstm.p.a", "fastlstm.p.b", "fastlstm.d.e"}
    assert imported_modules(tree, "fastlstm.p", True, known) == {"fastlstm.p.a", "fastlstm.p.b", "fastlstm.d.e"}


def test_find_cycle_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)
