"""The floors of host/ and mod_wasm/ (docs/architecture.md): a module imports only modules on
its own floor or below, no two modules import each other in a circle, and the guest-kind
rooms of host/ do not import one another. Imports are read from the sources as text: every
`crate::name` a file names outside its `#[cfg(test)]` module."""

import re

import pytest

from harness import REPO

# From the ground up. A folder (host/src/extension/) is one module.
HOST_FLOORS = [
    ["failure", "limits", "validate", "phase", "request", "stats", "slot", "config"],
    ["registry", "store", "engine", "exchange"],
    ["program", "wasi_http", "extension"],
    ["handler", "child"],
]
# One room per guest kind: none of them reaches into another.
HOST_ROOMS = {"program", "wasi_http", "extension"}
# Test-only code (behind cfg(test) / the `testing` feature) may import from any floor.
HOST_TEST_ONLY = {"testing"}

MOD_WASM_FLOORS = [
    ["ffi", "boundary", "log", "pool", "config"],
    ["request_state", "stores", "request"],
    ["handler", "lifecycle", "phases", "filters", "authz", "status"],
    ["directives"],
]


def matching_brace(text, open_at):
    """The index of the brace that closes the one at `open_at`."""
    depth = 0
    for i in range(open_at, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
    return len(text)


def code_of(text):
    """A file's code without string and char literals, comments and its unit-test module
    (the `#[cfg(test)] mod tests { … }` block; code after it is kept)."""
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', text)
    text = re.sub(r"'(?:\\.|[^'\\])'", "' '", text)
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = "\n".join(line.split("//")[0] for line in text.splitlines())
    while True:
        m = re.search(r"#\[cfg\(test\)\]\s*mod\s+tests\s*\{", text)
        if not m:
            return text
        text = text[:m.start()] + text[matching_brace(text, m.end() - 1) + 1:]


def group_names(group):
    """The first names of the paths in a `{…}` use group: `a::{b, c}, d` → a, d."""
    names, depth, token = [], 0, ""
    for ch in group + ",":
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        elif ch == "," and depth == 0:
            m = re.match(r"\s*(\w+)", token)
            if m:
                names.append(m.group(1))
            token = ""
            continue
        if depth == 0:
            token += ch
    return names


def imports_of(code, root_items=None, top_level=False):
    """The top-level crate modules a piece of code names: `crate::a`, `crate::{a, b::c}`,
    and in a file at the crate's top `super::a` (its parent is the crate root). A root item
    (`crate::Outcome`) counts as the module `root_items` says it comes from; other root
    items (`crate::MAX`, macros) stand above every floor."""
    root_items = root_items or {}
    prefixes = ["crate"] + (["super"] if top_level else [])
    names = set()
    for prefix in prefixes:
        names.update(re.findall(rf"\b{prefix}::(\w+)", code))
        for m in re.finditer(rf"\b{prefix}::\{{", code):
            names.update(group_names(code[m.end():matching_brace(code, m.end() - 1)]))
    return {root_items.get(n, n) for n in names if n[0].islower() or n in root_items}


def root_items(src):
    """What the crate root re-exports, and from which module: `pub use a::{B, C};`."""
    lib = src / "lib.rs"
    items = {}
    if lib.exists():
        for m in re.finditer(r"pub use (\w+)::(?:\{([^}]*)\}|(\w+));", code_of(lib.read_text())):
            for name in re.findall(r"\w+", m.group(2) or m.group(3)):
                items[name] = m.group(1)
    return items


def module_graph(src):
    """{module: {modules it imports}} for a crate's src/ folder (lib.rs is the crate root)."""
    graph, items = {}, root_items(src)
    for path in sorted(src.rglob("*.rs")):
        rel = path.relative_to(src)
        if rel.name == "lib.rs" and len(rel.parts) == 1:
            continue
        module = rel.parts[0] if len(rel.parts) > 1 else rel.stem
        top_level = len(rel.parts) == 1 or (len(rel.parts) == 2 and rel.name == "mod.rs")
        uses = imports_of(code_of(path.read_text()), items, top_level)
        graph.setdefault(module, set()).update(u for u in uses if u != module)
    return graph


def floor_violations(graph, floors, rooms=(), test_only=()):
    """Every import that runs up a floor, into another room, or to a module no floor names."""
    floor_of = {m: i for i, names in enumerate(floors) for m in names}
    wrong = []
    for module, uses in sorted(graph.items()):
        if module in test_only:
            continue
        if module not in floor_of:
            wrong.append(f"{module}: on no floor (add it to the floors here and in docs/architecture.md)")
            continue
        for used in sorted(uses):
            if used in test_only:
                wrong.append(f"{module} imports {used}, which is test-only")
            elif used not in floor_of:
                wrong.append(f"{module} imports {used}, which is on no floor")
            elif floor_of[used] > floor_of[module]:
                wrong.append(f"{module} (floor {floor_of[module]}) imports {used} (floor {floor_of[used]}), a higher floor")
            elif module in rooms and used in rooms:
                wrong.append(f"{module} imports {used}: one guest kind's room reaches into another's")
    return wrong


def circles(graph):
    """The import circles of a graph, each as a list of modules (Tarjan's strongly connected
    components of more than one module, or a module importing itself)."""
    index, low, on_stack, stack, found = {}, {}, set(), [], []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in graph.get(v, ()):
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


CRATES = [
    ("host", REPO / "host" / "src", HOST_FLOORS, HOST_ROOMS, HOST_TEST_ONLY),
    ("mod_wasm", REPO / "mod_wasm" / "src", MOD_WASM_FLOORS, set(), set()),
]


@pytest.mark.parametrize("name,src,floors,rooms,test_only", CRATES, ids=[c[0] for c in CRATES])
def test_imports_point_down(name, src, floors, rooms, test_only):
    graph = module_graph(src)
    assert len(graph) >= 10, f"{name}: read only {sorted(graph)}"
    # Every floor names real modules: a renamed file must be renamed here too.
    missing = [m for names in floors for m in names if m not in graph]
    assert not missing, f"{name}: the floors name modules that do not exist: {missing}"
    wrong = floor_violations(graph, floors, rooms, test_only)
    assert not wrong, f"{name}: imports against the floors:\n" + "\n".join(wrong)


@pytest.mark.parametrize("name,src", [(c[0], c[1]) for c in CRATES], ids=[c[0] for c in CRATES])
def test_no_import_circles(name, src):
    found = circles(module_graph(src))
    assert not found, f"{name}: import circles: {found}"


# The checks themselves, on small made-up crates: each must catch what it is for.

def fake_crate(tmp_path, files):
    src = tmp_path / "src"
    for rel, text in files.items():
        path = src / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return src


def test_the_check_catches_an_import_up_a_floor(tmp_path):
    src = fake_crate(tmp_path, {
        "lib.rs": "pub mod low; pub mod high;",
        "low.rs": "use crate::high::Thing;\n",
        "high/mod.rs": "use crate::{low, high};\n",
    })
    wrong = floor_violations(module_graph(src), [["low"], ["high"]])
    assert wrong == ["low (floor 0) imports high (floor 1), a higher floor"]
    assert circles(module_graph(src)) == [["high", "low"]]


def test_the_check_ignores_comments_and_unit_tests_but_not_inline_paths(tmp_path):
    src = fake_crate(tmp_path, {
        "low.rs": "// crate::high in a comment\nfn f() { crate::high::g() }\n#[cfg(test)]\nmod tests {\n    use crate::high;\n}\n",
        "high.rs": "",
    })
    assert module_graph(src)["low"] == {"high"}
    # Code after the test module, after a URL in a string, in a nested group, through
    # `super::` at the top, or a root re-export: each is an import.
    src = fake_crate(tmp_path / "c", {
        "lib.rs": "pub mod a; pub mod b; pub mod c; pub mod d; pub mod e; pub mod f;\npub use f::{Thing, Other};\n",
        "a.rs": "#[cfg(test)]\nmod tests {\n    fn t() { let x = { 1 }; }\n}\nuse crate::b;\n",
        "b.rs": "const U: &str = \"http://x\"; use crate::c::Y;\n",
        "c.rs": "use crate::{a::{X, Z}, d};\n",
        "d.rs": "use super::e::Q;\n",
        "e.rs": "fn g() -> crate::Thing { todo!() }\n",
        "f.rs": "",
    })
    graph = module_graph(src)
    assert graph["a"] == {"b"} and graph["b"] == {"c"} and graph["c"] == {"a", "d"}
    assert graph["d"] == {"e"} and graph["e"] == {"f"}
    src = fake_crate(tmp_path / "b", {
        "low.rs": "// crate::high in a comment\n#[cfg(test)]\nmod tests {\n    use crate::high;\n}\n",
        "high.rs": "",
    })
    assert module_graph(src)["low"] == set()


def test_the_check_keeps_rooms_apart_and_every_module_on_a_floor(tmp_path):
    src = fake_crate(tmp_path, {
        "a.rs": "use crate::b::X;\n",
        "b.rs": "use crate::testing::Fake;\n",
        "c.rs": "",
        "testing.rs": "use crate::a;\n",
    })
    wrong = floor_violations(module_graph(src), [["a", "b"]], rooms={"a", "b"}, test_only={"testing"})
    assert wrong == [
        "a imports b: one guest kind's room reaches into another's",
        "b imports testing, which is test-only",
        "c: on no floor (add it to the floors here and in docs/architecture.md)",
    ]
