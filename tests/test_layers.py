"""The rooms import one way: every import in pnc_pack/ (top-level or inside a function) must be an arrow that the
table in docs/ARCHITECTURE.md allows. The table is the rule; this test reads it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WATCHED = {"torch", "huggingface_hub"}  # outside packages a room must be allowed to import by name


def allowed_arrows(root: Path) -> dict[str, set[str]]:
    text = (root / "docs" / "ARCHITECTURE.md").read_text()
    section = text.split("## The arrows", 1)[1]
    rows = re.findall(r"^\| `?([\w_]+)`? \| ([^|]*)\|$", section, re.M)
    table = {room: {r.strip() for r in deps.split(",") if r.strip()} for room, deps in rows if room != "room"}
    assert len(table) > 10, "the arrows table in docs/ARCHITECTURE.md could not be read"
    return table


def room_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, root: Path) -> list[tuple[int, str]]:
    """(line, imported module) for every import statement in the file, relative ones made absolute."""
    tree = ast.parse(path.read_text(), filename=str(path))
    own = module_name(path, root)
    package = own if path.name == "__init__.py" else own.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            if name == "pnc_pack":  # `from pnc_pack import x`: the arrow goes to x's room
                out += [(node.lineno, f"pnc_pack.{a.name}") for a in node.names]
            else:
                out.append((node.lineno, name))
    return out


def violations(root: Path = ROOT) -> list[str]:
    table = allowed_arrows(root)
    bad = []
    for path in sorted((root / "pnc_pack").rglob("*.py")):
        where = path.relative_to(root)
        room = room_of(module_name(path, root))
        if room not in table:
            bad.append(f"{where}: room {room!r} is not in docs/ARCHITECTURE.md's arrows table")
            continue
        for line, name in imports(path, root):
            top = name.split(".")[0]
            if top == "pnc_pack":
                target = room_of(name)
                if target != room and target not in table[room]:
                    bad.append(f"{where}:{line}: {room} -> {target} ({name})")
            elif top in WATCHED and top not in table[room]:
                bad.append(f"{where}:{line}: {room} -> {top}")
    return bad


def test_every_import_follows_the_arrows():
    assert violations() == []


def test_the_check_sees_function_local_imports(tmp_path):
    """A function-local import against the arrows is caught (the check would be worthless otherwise)."""
    fake = tmp_path / "pnc_pack" / "format"
    fake.mkdir(parents=True)
    (fake / "bad.py").write_text("def f():\n    from pnc_pack.hub import pull\n    import torch\n    from . import codec\n")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "ARCHITECTURE.md").write_text((ROOT / "docs" / "ARCHITECTURE.md").read_text())
    found = violations(tmp_path)
    assert found == ["pnc_pack/format/bad.py:2: format -> hub (pnc_pack.hub)", "pnc_pack/format/bad.py:3: format -> torch"]


def long_docstrings(root: Path = ROOT, limit: int = 40) -> list[str]:
    """Modules of pnc_pack/ whose docstring runs over ``limit`` lines: code explains in brief, and the measurements
    behind a choice live in docs/builder-notes.md (docs/ARCHITECTURE.md, "Where things are decided")."""
    out = []
    for path in sorted((root / "pnc_pack").rglob("*.py")):
        doc = ast.get_docstring(ast.parse(path.read_text()), clean=False) or ""
        if len(doc.splitlines()) > limit:
            out.append(f"{path.relative_to(root).as_posix()}: {len(doc.splitlines())} lines")
    return out


def test_no_module_docstring_over_40_lines(tmp_path):
    assert long_docstrings() == []
    (tmp_path / "pnc_pack").mkdir()
    (tmp_path / "pnc_pack" / "long.py").write_text('"""' + "line\n" * 41 + '"""\n')
    assert long_docstrings(tmp_path) == ["pnc_pack/long.py: 41 lines"]
