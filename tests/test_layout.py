"""The package's layout: stage packages in the order sound travels, entry points alone at
the root, and no import cycle between modules (imports only for type checking aside)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "firmware_app"
STAGES = {
    "app", "core", "audio", "listen", "recognize", "understand", "speak", "edges",
    "config", "system", "ota",
}  # fmt: skip


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, known: set[str]) -> set[str]:
    """The package's modules ``path`` imports when it runs (not under TYPE_CHECKING)."""
    tree = ast.parse(path.read_text())
    typing_only = {
        id(node)
        for branch in ast.walk(tree)
        if isinstance(branch, ast.If) and "TYPE_CHECKING" in ast.unparse(branch.test)
        for stmt in branch.body
        for node in ast.walk(stmt)
    }
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [f"{node.module}.{alias.name}" for alias in node.names]
            found |= {n for n in names if n in known} or {node.module}
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
    return found & known


def test_the_root_holds_only_the_entry_points_and_the_stages() -> None:
    modules = {p.name for p in PACKAGE.glob("*.py")}
    assert modules == {"__init__.py", "__main__.py", "cli.py"}
    packages = {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    assert packages == STAGES


def test_no_module_imports_itself_back() -> None:
    paths = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {name: imports(path, set(paths)) - {name} for name, path in paths.items()}
    cycles: list[list[str]] = []

    def walk(name: str, trail: list[str], done: set[str]) -> None:
        for target in sorted(graph[name]):
            if target in trail:
                cycles.append([*trail[trail.index(target) :], target])
            elif target not in done:
                walk(target, [*trail, target], done)
        done.add(name)

    finished: set[str] = set()
    for name in sorted(graph):
        if name not in finished:
            walk(name, [name], finished)
    assert cycles == []


def test_the_architecture_doc_names_every_stage() -> None:
    doc = (PACKAGE.parent / "docs" / "architecture.md").read_text()
    for stage in STAGES:
        assert f"{stage}/" in doc, stage


def test_the_architecture_doc_shows_the_tree_as_it_is() -> None:
    """Every module of the stages (their sub-packages aside) is in the doc's tree, and every
    file the tree names exists."""
    doc = (PACKAGE.parent / "docs" / "architecture.md").read_text()
    tree = doc.split("## Layout", 1)[1].split("```")[1]
    named = set(re.findall(r"\b(\w+\.py)\b", tree))
    shown = {
        p.name
        for stage in STAGES - {"ota", "edges"}
        for p in (PACKAGE / stage).glob("*.py")
        if p.name != "__init__.py"
    }
    assert shown <= named
    existing = {p.name for p in PACKAGE.rglob("*.py")}
    assert named <= existing


def test_the_frame_path_in_the_doc_is_the_codes_and_never_climbs_back() -> None:
    doc = (PACKAGE.parent / "docs" / "architecture.md").read_text()
    block = doc.split("A frame's path", 1)[1].split("```")[1]
    path = re.findall(r"^(\w+/\w+\.py)", block, re.M)
    assert len(path) <= 4 and all((PACKAGE / p).is_file() for p in path)
    known = {module_name(p) for p in PACKAGE.rglob("*.py")}
    upstream = {"firmware_app.app.wiring", "firmware_app.core.assistant"}
    for module in path[2:]:  # hearing and what it hands frames to
        assert not imports(PACKAGE / module, known) & upstream, module
    assert "firmware_app.listen.segmenter" in imports(PACKAGE / path[2], known)


def test_the_core_imports_nothing_from_the_edges() -> None:
    """The state machine knows no edge: what the LEDs show is chosen at the LED edge."""
    known = {module_name(p) for p in PACKAGE.rglob("*.py")}
    for path in (PACKAGE / "core").glob("*.py"):
        assert not {m for m in imports(path, known) if m.startswith("firmware_app.edges")}, path
