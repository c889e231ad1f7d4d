"""The data flow reads from the folder names, and the imports follow it, read from the source (every import, at module
level or inside a function): no import circle; every folder of the package is a stage of the flow, in order, and a
stage imports only its own folder, earlier stages and the foundations (harness/core/); nothing in a stage imports the
orchestration at the package's top level (run.py, launch.py, ...), which may import any."""
import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "harness"
# the flow, in order; a stage may import itself, harness/core and the stages before it
STAGES = ("core", "config", "models", "precision", "engines", "measure", "profiles", "evaluate", "record", "analysis",
          "reproduce")


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        found[name.removesuffix(".__init__")] = path
    return found


def import_graph() -> dict[str, set[str]]:
    mods = modules()

    def owner(name: str) -> str | None:  # the module (or package) an imported name lives in
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    graph = {}
    for name, path in mods.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                deps |= {owner(a.name) for a in node.names if a.name.startswith("harness")}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(parts + ([base] if base else []))
                if base.startswith("harness"):
                    deps |= {f"{base}.{a.name}" if f"{base}.{a.name}" in mods else owner(base) for a in node.names}
        graph[name] = deps - {name, None}
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm, iterative)."""
    index, low, on, stack, found, counter = {}, {}, set(), [], [], [0]

    def visit(start):
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = counter[0]
        counter[0] += 1
        stack.append(start)
        on.add(start)
        while work:
            node, children = work[-1]
            child = next((c for c in children if c in graph), None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter[0]
                    counter[0] += 1
                    stack.append(child)
                    on.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def stage(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and (PACKAGE / parts[1]).is_dir()) else None


def test_the_finder_finds_a_circle():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert circles({"a": {"b"}, "b": set()}) == []


def test_every_folder_of_the_package_is_a_stage_of_the_flow():
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert folders == set(STAGES)


def test_no_import_circle():
    assert circles(import_graph()) == []


def test_stages_import_only_earlier_stages_and_the_foundations():
    wrong = []
    for module, deps in import_graph().items():
        mine = stage(module)
        if mine is None:  # orchestration at the root: may import anything
            continue
        for dep in deps:
            theirs = stage(dep)
            if theirs is None:
                wrong.append(f"{module} -> {dep} (a stage importing the orchestration)")
            elif theirs not in STAGES or mine not in STAGES:
                wrong.append(f"{module} -> {dep} (a folder missing from STAGES)")
            elif STAGES.index(theirs) > STAGES.index(mine):
                wrong.append(f"{module} -> {dep} (an arrow back up the flow)")
    assert wrong == []


def test_the_foundations_import_nothing_else():
    graph = import_graph()
    assert {f"{m} -> {d}" for m, ds in graph.items() if stage(m) == "core" for d in ds if stage(d) != "core"} == set()
