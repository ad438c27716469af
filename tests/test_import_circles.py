"""No module imports another in a circle, in any of pmsim's packages (function-level and
TYPE_CHECKING imports count: a circle hidden in a function is still a tangle to read)."""

from __future__ import annotations

from pathlib import Path

from importgraph import find_circles, module_graph, modules_under

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("devices", "rules", "sim")


def test_no_module_imports_another_in_a_circle() -> None:
    modules = modules_under(ROOT, PACKAGES)
    assert len(modules) > 60, sorted(modules)  # the checker saw the whole tree
    circles = [" -> ".join(c) for c in find_circles(module_graph(modules))]
    assert circles == []


def _plant(base: Path, files: dict[str, str]) -> dict[str, Path]:
    for rel, text in files.items():
        path = base / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return modules_under(base, ["pkg"])


def test_a_planted_circle_is_found_however_it_is_written(tmp_path: Path) -> None:
    modules = _plant(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/a.py": "from pkg.b import thing\n",
            "pkg/sub/__init__.py": "",
            # hidden in a function and written relatively: still an edge
            "pkg/b.py": "def f():\n    from .sub import c\n",
            "pkg/sub/c.py": (
                "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pkg.a\n"
            ),
            "pkg/d.py": "from pkg import a\n",  # imports into the circle, is not part of it
        },
    )
    assert find_circles(module_graph(modules)) == [["pkg.a", "pkg.b", "pkg.sub.c", "pkg.a"]]


def test_a_one_way_tree_has_no_circle(tmp_path: Path) -> None:
    modules = _plant(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/a.py": "import pkg.b\nfrom pkg.sub import c\nimport json\n",
            "pkg/b.py": "from . import sub\n",
            "pkg/sub/__init__.py": "",
            "pkg/sub/c.py": "from ..b import x\n",
        },
    )
    graph = module_graph(modules)
    assert graph["pkg.a"] == {"pkg.b", "pkg.sub.c"}
    assert graph["pkg.sub.c"] == {"pkg.b"}
    assert find_circles(graph) == []
