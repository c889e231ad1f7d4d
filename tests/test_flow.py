"""The data flow reads from the folder names, and the imports follow it: a stage imports only from its own folder or
from earlier stages (the orchestrators at the package's top level, run.py and launch.py, may import any)."""
import ast

from tests.conftest import ROOT

ORDER = ["models", "precision", "engines", "measure", "evaluate", "record", "analysis"]


def test_no_stage_imports_a_later_one():
    wrong = []
    for path in (ROOT / "harness").rglob("*.py"):
        stage = path.relative_to(ROOT / "harness").parts[0]
        if stage not in ORDER:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("harness."):
                other = node.module.split(".")[1]
                if other in ORDER and ORDER.index(other) > ORDER.index(stage):
                    wrong.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {node.module}")
    assert not wrong, wrong
