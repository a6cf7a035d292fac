"""The package's shape: no import cycle (function-local imports counted too)
and no module over 400 lines; no stateful TensorFlow random op drawn in
keras_slim, tests or examples. Read from the source with `ast`; nothing is
imported."""

import ast
import os

PACKAGE_DIR = os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), "keras_slim")
MAX_LINES = 400


def _module_files(package_dir):
    """{dotted module name: path}; a package is its `__init__.py`."""
    root = os.path.dirname(package_dir)
    found = {}
    for parent, _, files in os.walk(package_dir):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(parent, name)
                dotted = os.path.relpath(path, root)[:-3].replace(os.sep, ".")
                found[dotted.removesuffix(".__init__")] = path
    return found


def _imported_names(tree, package):
    """Every dotted name an import statement anywhere in `tree` names."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolved against the package
                parts = package.split(".")[: len(package.split(".")) -
                                           node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            yield from (f"{base}.{alias.name}" for alias in node.names)


def import_graph(modules):
    """{module: modules it imports}: `from a.b import c` is `a.b.c` when
    that is a module, else `a.b` (whose `__init__` runs)."""
    def owner(name):
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name

    graph = {}
    for name, path in modules.items():
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), path)
        package = name if path.endswith("__init__.py") else \
            name.rpartition(".")[0]
        targets = {owner(n) for n in _imported_names(tree, package)}
        graph[name] = sorted(t for t in targets if t and t != name)
    return graph


def find_cycle(graph):
    """One import cycle as a list of modules (first repeated last), or []."""
    state = {}  # 1: on the current path, 2: done

    def visit(node, path):
        state[node] = 1
        for nxt in graph.get(node, ()):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(nxt, path + [nxt])
                if cycle:
                    return cycle
        state[node] = 2
        return []

    for start in sorted(graph):
        if start not in state:
            cycle = visit(start, [start])
            if cycle:
                return cycle
    return []


def test_the_cycle_finder_finds_a_cycle_through_a_function_local_import(
        tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("from pkg.a import f\n")
    (package / "a.py").write_text("def f():\n    from pkg import b\n")
    (package / "b.py").write_text("from . import c\n")
    (package / "c.py").write_text("import os\n")
    graph = import_graph(_module_files(str(package)))
    assert graph["pkg.a"] == ["pkg.b"] and graph["pkg.b"] == ["pkg.c"]
    assert find_cycle(graph) == []
    (package / "c.py").write_text("from pkg import f\n")  # c -> pkg -> a
    assert find_cycle(import_graph(_module_files(str(package)))) == [
        "pkg", "pkg.a", "pkg.b", "pkg.c", "pkg"]


def test_keras_slim_has_no_import_cycle():
    modules = _module_files(PACKAGE_DIR)
    graph = import_graph(modules)
    assert len(modules) > 100 and sum(map(len, graph.values())) > 300
    assert find_cycle(graph) == []


def test_no_module_is_over_400_lines():
    long = {}
    for name, path in _module_files(PACKAGE_DIR).items():
        with open(path, encoding="utf-8") as f:
            count = sum(1 for _ in f)
        if count > MAX_LINES:
            long[name] = count
    assert long == {}, f"split these modules (over {MAX_LINES} lines): {long}"


STATEFUL_RANDOM = ("tf.random.", "tf.image.random_", "tf.nn.dropout")
NOT_STATEFUL = ("tf.random.stateless_", "tf.random.set_seed",
                "tf.random.experimental.stateless_")


def _dotted(node):
    """`a.b.c` of an attribute chain, or None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return ".".join([node.id] + parts[::-1])


def stateful_random_calls(paths):
    """`[(path, line, name)]` of calls to TensorFlow's stateful random ops."""
    found = []
    for path in paths:
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), path)
        for node in ast.walk(tree):
            name = isinstance(node, ast.Call) and _dotted(node.func)
            if (name and name.startswith(STATEFUL_RANDOM)
                    and not name.startswith(NOT_STATEFUL)):
                found.append((path, node.lineno, name))
    return found


def test_the_stateful_random_finder_finds_one(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("x = tf.random.stateless_uniform((2,), (1, 2))\n"
                      "y = tf.random.uniform((2,))\n")
    assert stateful_random_calls([str(source)]) == [
        (str(source), 2, "tf.random.uniform")]


def test_no_stateful_tensorflow_random_op_is_drawn():
    """The suite seeds TensorFlow without clearing its kernel cache
    (`tests/_tf_seed.py`): right only while no stateful random op draws."""
    root = os.path.dirname(PACKAGE_DIR)
    paths = [os.path.join(parent, name)
             for folder in ("keras_slim", "tests", "examples")
             for parent, _, files in os.walk(os.path.join(root, folder))
             for name in files if name.endswith(".py")]
    assert len(paths) > 200
    assert stateful_random_calls(paths) == []
