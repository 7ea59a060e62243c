"""The Krita plugin runs on Python 3.10, the Python some of Krita's own release builds bundle.

The built zip is unpacked and checked as Krita would get it: `vermin` statically over every module
(ours and the vendored websockets), the vendored websockets against its wheel's Requires-Python,
and, where a Python 3.10 interpreter is at hand, the package compiled and run under it against a
live bridge.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet

from ganbridge.plugin_build import KRITA_PYTHON, KRITA_WEBSOCKETS, build_krita, websockets_wheel, wheel_requires_python
from tests.conftest import BridgeThread, make_settings, missing_host

# Violations vermin reports in the vendored websockets that cannot happen on 3.10, each a
# (path in the zip, vermin's message) pair, so that anything else it finds fails the test:
# - asyncio/compatibility.py imports asyncio.timeout(_at) only under `if sys.version_info >= (3, 11)`
#   and its own async_timeout copy otherwise;
# - broadcast() in asyncio/connection.py and legacy/protocol.py raises ExceptionGroup only with
#   raise_exceptions=True, which it refuses with ValueError before Python 3.11.
# test_the_package_runs_under_python_310 imports all three modules under a real 3.10 where it can.
GUARDED_IN_WEBSOCKETS = {
    ("ganbridge/vendor/websockets/asyncio/compatibility.py", "'asyncio.timeout' member requires !2, 3.11"),
    ("ganbridge/vendor/websockets/asyncio/compatibility.py", "'asyncio.timeout_at' member requires !2, 3.11"),
    ("ganbridge/vendor/websockets/asyncio/connection.py", "'ExceptionGroup' member requires !2, 3.11"),
    ("ganbridge/vendor/websockets/legacy/protocol.py", "'ExceptionGroup' member requires !2, 3.11"),
}


@pytest.fixture(scope="module")
def unpacked(tmp_path_factory) -> Path:
    """The built Krita zip, unpacked: the folder that holds `ganbridge/`."""
    root = tmp_path_factory.mktemp("krita-zip")
    with zipfile.ZipFile(build_krita(root / "dist")) as z:
        z.extractall(root / "unpacked")
    return root / "unpacked"


def vermin_violations(folder: Path) -> tuple[int, set[tuple[str, str]]]:
    """Run vermin for Python 3.10 over `folder`: (how many files it analysed, the violations as
    (path relative to folder, message) pairs)."""
    exe = shutil.which("vermin", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    if exe is None:
        missing_host("vermin is not installed", 'pip install -e ".[test]"')
    # --eval-annotations: judge annotations as if evaluated, not just postponed (stricter).
    # --no-config-file: a vermin.ini or setup.cfg found above the folder must not change the verdict.
    proc = subprocess.run(
        [exe, "--target=3.10-", "--no-tips", "--violations", "--eval-annotations", "--no-config-file", str(folder)],
        capture_output=True,
        text=True,
        timeout=240,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode in (0, 1), f"vermin failed (exit {proc.returncode}):\n{out[-3000:]}"
    # "Analyzing N files using P processes..", without "N files" when there is one.
    analysed = re.search(r"Analyzing (?:(\d+) files )?using", out)
    assert analysed, f"vermin did not say what it analysed:\n{out[-3000:]}"
    found: set[tuple[str, str]] = set()
    current: str | None = None
    for line in proc.stdout.splitlines():
        # Violations come as a header line ending in the file's path, then its rules indented (a file
        # vermin cannot parse is one too: "error: invalid syntax ...").
        if line.startswith("  ") and current is not None:
            found.add((current, line.strip()))
        elif line.strip():
            at = line.find(str(folder))
            current = Path(line[at:].rstrip()).relative_to(folder).as_posix() if at >= 0 else None
    if proc.returncode == 1:
        assert found, f"vermin says the target is not met but listed no violation:\n{out[-3000:]}"
    return int(analysed.group(1) or 1), found


def test_vermin_catches_a_python_311_construct(tmp_path):
    # The check below is only as good as this parse of vermin's report: show that it can fail.
    (tmp_path / "ok.py").write_text("import json\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "new.py").write_text("import tomllib\n")
    (tmp_path / "broken.py").write_text("def (:\n")
    analysed, found = vermin_violations(tmp_path)
    assert analysed == 3
    assert {path for path, _ in found} == {"sub/new.py", "broken.py"}, found
    assert any(path == "sub/new.py" and "tomllib" in message for path, message in found), found
    assert any(path == "broken.py" and "invalid syntax" in message for path, message in found), found


def test_the_whole_krita_package_is_python_310_code(unpacked):
    package = unpacked / "ganbridge"
    sources = sorted(package.rglob("*.py"))
    names = {p.relative_to(package).as_posix() for p in sources}
    # The whole package: our modules, the shared client and the vendored websockets.
    assert {"__init__.py", "docker.py", "ganbridge_client.py", "ganbridge_schema.py"} <= names
    assert {"vendor/websockets/__init__.py", "vendor/websockets/sync/client.py"} <= names
    analysed, found = vermin_violations(unpacked)
    assert analysed == len(sources)
    unexpected = found - GUARDED_IN_WEBSOCKETS
    assert not unexpected, "Python 3.11+ code in the Krita plugin:\n" + "\n".join(
        f"{p}: {m}" for p, m in sorted(unexpected)
    )
    # A guarded spot that no longer shows up means websockets changed there: look at the list again.
    assert found == GUARDED_IN_WEBSOCKETS


def test_the_vendored_websockets_is_the_pinned_release_for_python_310(unpacked):
    vendor = unpacked / "ganbridge" / "vendor"
    probe = "import sys, websockets; print(websockets.__version__); print(websockets.__file__)"
    proc = subprocess.run(
        [sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(vendor)!r}); {probe}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    version, location = proc.stdout.split()
    assert version == KRITA_WEBSOCKETS and Path(location).is_relative_to(vendor)
    requires = wheel_requires_python(websockets_wheel(None, KRITA_WEBSOCKETS, KRITA_PYTHON))
    assert requires, f"the websockets {version} wheel declares no Requires-Python"
    assert SpecifierSet(requires).contains(KRITA_PYTHON), f"websockets {version} requires Python {requires}"


def test_a_wheel_for_a_newer_python_is_refused_for_krita(tmp_path):
    # --wheel stays open for Krita, but not with a websockets that cannot import on its Python.
    from ganbridge.plugin_build import BuildError

    wheel = tmp_path / "websockets-99.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("websockets/__init__.py", "")
        z.writestr("websockets-99.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: websockets\nRequires-Python: >=3.12\n\nText\n")  # fmt: skip
    with pytest.raises(BuildError, match=r"requires Python >=3\.12.*Python 3\.10"):
        build_krita(tmp_path / "dist", wheel)
    assert not (tmp_path / "dist").exists() or not any((tmp_path / "dist").iterdir())


def python_310() -> str | None:
    """A Python 3.10 interpreter here, if there is one: $GANBRIDGE_PYTHON310, python3.10 on PATH,
    or one that pyenv installed."""
    candidates = [os.environ.get("GANBRIDGE_PYTHON310", ""), shutil.which("python3.10") or ""]
    candidates += [str(p) for p in sorted(Path.home().glob(".pyenv/versions/3.10*/bin/python3.10"))]
    for exe in filter(None, candidates):
        try:
            proc = subprocess.run(
                [exe, "-c", "import sys; print(sys.version_info[:2])"], capture_output=True, text=True, timeout=30
            )
        except OSError:
            continue
        if proc.returncode == 0 and proc.stdout.strip() == "(3, 10)":
            return exe
    return None


# Run by Python 3.10 with argv: the unpacked zip's folder, a bridge URL. It compiles every module,
# imports all of the vendored websockets and the plain-Python plugin modules, then talks to the
# bridge through the shared client, and prints what it saw as JSON.
RUN_UNDER_310 = r"""
import importlib, json, pkgutil, sys, time, types
from pathlib import Path

root, url = Path(sys.argv[1]), sys.argv[2]
package = root / "ganbridge"
sys.path[:0] = [str(package / "vendor"), str(package)]
for path in sorted(package.rglob("*.py")):
    compile(path.read_text(encoding="utf-8"), str(path), "exec")
import websockets
for info in pkgutil.walk_packages(websockets.__path__, "websockets."):
    importlib.import_module(info.name)
plain = types.ModuleType("plain")  # the plugin's package, without its __init__ (that needs Krita)
plain.__path__ = [str(package)]
sys.modules["plain"] = plain
for name in ("pixels", "recipes", "provenance", "ganbridge_jobs", "ganbridge_live", "ganbridge_presets", "ganbridge_work"):
    importlib.import_module(f"plain.{name}")  # the modules that need no Krita or Qt
import ganbridge_client as gc, ganbridge_schema

client = gc.BridgeClient(url, client_name="python-3.10")
client.start()
rid, states, reply = None, [], None
deadline = time.monotonic() + 60
while reply is None and time.monotonic() < deadline:
    for event in client.poll():
        if event.kind == "state":
            states.append(event.data.status)
            if event.data.status == "connected" and rid is None:
                rid = client.request("generators")
        elif event.data.get("id") == rid:
            reply = event.data
    time.sleep(0.01)
client.stop()
print(json.dumps({
    "python": list(sys.version_info[:2]), "websockets": websockets.__version__, "from": websockets.__file__,
    "states": states, "reply": reply,
}))
"""


def test_the_package_runs_under_python_310(unpacked, tmp_path):
    exe = python_310()
    if exe is None:
        missing_host("a Python 3.10 (the oldest Python a Krita build bundles)",
                     "pyenv install 3.10, or set GANBRIDGE_PYTHON310 to one")  # fmt: skip
    bridge = BridgeThread(make_settings(tmp_path))
    try:
        script = tmp_path / "run_310.py"
        script.write_text(RUN_UNDER_310)
        # -I: nothing from this venv or the user's site-packages; only the unpacked plugin.
        proc = subprocess.run(
            [exe, "-I", str(script), str(unpacked), bridge.url], capture_output=True, text=True, timeout=120
        )
    finally:
        bridge.stop()
    assert proc.returncode == 0, proc.stderr[-3000:]
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    assert seen["python"] == [3, 10] and seen["websockets"] == KRITA_WEBSOCKETS
    assert Path(seen["from"]).is_relative_to(unpacked / "ganbridge" / "vendor")
    assert "connected" in seen["states"], seen["states"]
    reply = seen["reply"]
    assert reply is not None and reply["type"] == "generators", reply
    assert "texture" in [g["name"] for g in reply["generators"]], reply
