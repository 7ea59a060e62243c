"""The house rules, checked: one import root, every module shipped, no cycles, no private imports
across modules, and a core that does not import torch."""

from __future__ import annotations

import ast
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Repository folder -> the import name it is installed as (pyproject.toml, [tool.setuptools]).
FOLDERS = {"bridge": "ganbridge", "generators": "ganbridge.generators"}


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    root = FOLDERS[parts[0]]
    rest = parts[1:-1] if parts[-1] == "__init__" else parts[1:]
    return ".".join([root, *rest])


def source_modules() -> dict[str, Path]:
    files = [p for folder in FOLDERS for p in (ROOT / folder).rglob("*.py") if "__pycache__" not in p.parts]
    return {module_name(p): p for p in files}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(out), str(ROOT)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    (path,) = out.glob("ganbridge-*.whl")
    return path


def test_the_distribution_adds_one_top_level_name(wheel, tmp_path):
    venv = tmp_path / "fresh"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    site = Path(
        subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True, capture_output=True, text=True,
        ).stdout.strip()
    )  # fmt: skip
    before = {p.name for p in site.iterdir()}
    subprocess.run(
        [python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)], check=True, timeout=300
    )
    added = {p.name for p in site.iterdir()} - before
    assert {name for name in added if not name.endswith(".dist-info")} == {"ganbridge"}, added
    top_level = subprocess.run(
        [python, "-c", "import importlib.metadata as m; print(sorted({f.parts[0] for f in m.files('ganbridge')}))"],
        check=True, capture_output=True, text=True, cwd=tmp_path,
    ).stdout  # fmt: skip
    assert "'bridge'" not in top_level and "'generators'" not in top_level and "'plugins'" not in top_level


def test_the_wheel_holds_every_module_weight_and_plugin_file(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {"ganbridge/" + str(p.relative_to(ROOT / "bridge")) for p in (ROOT / "bridge").rglob("*.py")}
    expected |= {
        "ganbridge/generators/" + str(p.relative_to(ROOT / "generators")) for p in (ROOT / "generators").rglob("*.py")
    }
    expected |= {
        "ganbridge/generators/" + str(p.relative_to(ROOT / "generators"))
        for p in (ROOT / "generators" / "weights").rglob("*")
        if p.suffix in (".safetensors", ".json")
    }
    expected |= {
        "ganbridge/plugins/" + str(p.relative_to(ROOT / "plugins"))
        for p in (ROOT / "plugins").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and "vendor" not in p.parts
    }
    expected = {name for name in expected if "__pycache__" not in name}
    assert not expected - names, sorted(expected - names)


def imports_of(path: Path, me: str) -> list[tuple[str, list[str]]]:
    """(imported module, names taken from it) for every ganbridge import in the file, lazy ones too."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            base = node.module
            if node.level:
                package = me.rsplit(".", node.level)[0] if path.name != "__init__.py" else me
                base = f"{package}.{node.module}"
            if base.startswith("ganbridge"):
                found.append((base, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            found += [(a.name, []) for a in node.names if a.name.startswith("ganbridge")]
    return found


def test_no_import_cycles_between_modules():
    modules = source_modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for target, names in imports_of(path, name):
            # `from package import module` depends on the module, not on the package's __init__
            targets = [f"{target}.{n}" for n in names if f"{target}.{n}" in modules] or [target]
            graph[name] |= {t for t in targets if t in modules and t != name}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    assert not cycles, cycles


def test_no_private_names_imported_across_modules():
    offenders = [
        f"{name} imports {target}.{n}"
        for name, path in source_modules().items()
        for target, names in imports_of(path, name)
        for n in names
        if n.startswith("_") and n != "__version__"
    ]
    assert not offenders, offenders


def test_importing_the_core_and_the_doors_does_not_import_torch():
    code = (
        "import sys\n"
        "import ganbridge.core.protocol, ganbridge.core.service, ganbridge.core.scheduler, ganbridge.core.store\n"
        "import ganbridge.core.registry, ganbridge.core.settings, ganbridge.doors.osc_wire, ganbridge.generators.latent\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch' or m == 'safetensors.torch'))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "[]", out.stdout
