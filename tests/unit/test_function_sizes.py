"""Functions a reader can hold: none in the operator or the workers is over 60 lines (issue #19)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LIMIT = 60
# The product code: the operator and the code that runs inside Ray (the local stack, in sandbox/,
# is development tooling and not held to this).
TREES = (ROOT / "operator" / "drover", ROOT / "workers" / "drover_workers")


def long_functions(path: Path, root: Path = ROOT) -> list[str]:
    """`path:line name (n lines)` for each function or method in `path` longer than LIMIT."""
    tree = ast.parse(path.read_text(), filename=str(path))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            lines = (node.end_lineno or node.lineno) - node.lineno + 1
            if lines > LIMIT:
                out.append(f"{path.relative_to(root)}:{node.lineno} {node.name} ({lines} lines)")
    return out


def product_files() -> list[Path]:
    return [path for tree in TREES for path in sorted(tree.rglob("*.py"))]


def test_no_function_in_the_operator_or_the_workers_is_over_60_lines() -> None:
    files = product_files()
    assert len(files) > 50  # the trees were found
    too_long = [entry for path in files for entry in long_functions(path)]
    assert not too_long, "split these by decision:\n" + "\n".join(too_long)


def test_the_check_finds_a_function_one_line_over_the_limit(tmp_path: Path) -> None:
    at_limit = "\n".join(f"    a{i} = {i}" for i in range(LIMIT - 1))
    over = "\n".join(f"        b{i} = {i}" for i in range(LIMIT))
    source = f"def fits():\n{at_limit}\n\n\nclass C:\n    async def over(self):\n{over}\n"
    path = tmp_path / "sample.py"
    path.write_text(source)
    assert long_functions(path, root=tmp_path) == [
        f"sample.py:{LIMIT + 4} over ({LIMIT + 1} lines)"
    ]
