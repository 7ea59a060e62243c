"""`ganbridge plugin build HOST`: the installable plugin packages.

Blender: the extension's sources plus the shared protocol client, the pure-Python `websockets` wheel
in `wheels/`, built and then validated by the extension CLI that ships inside Blender (or bpy).
Krita: a zip for Tools > Scripts > Import Python Plugin from File: `ganbridge.desktop`,
`ganbridge.action` and the `ganbridge/` package with the shared modules and websockets (unpacked from
its pure-Python wheel into `ganbridge/vendor/`, since Krita has no way to install wheels). That
websockets is the pinned `KRITA_WEBSOCKETS`, not the installed one: some Krita builds bundle Python 3.10.
"""

from __future__ import annotations

import importlib.metadata
import importlib.resources
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import platformdirs

from ganbridge import __version__

# Pure-Python modules under plugins/client that every plugin bundles.
SHARED_MODULES = (
    "ganbridge_client.py",
    "ganbridge_jobs.py",
    "ganbridge_live.py",
    "ganbridge_presets.py",
    "ganbridge_recipes.py",
    "ganbridge_schema.py",
    "ganbridge_work.py",
)

# The websockets the Krita plugin vendors. Some of Krita's own release builds bundle Python 3.10,
# and websockets 17 requires Python >= 3.11; 16.1.1 is the newest release whose Requires-Python
# (>=3.10) admits 3.10, and its sync client has everything ganbridge_client uses (`connect(...,
# proxy=None)` needs 15.0 or newer). tests/plugins/test_plugin_python.py checks both claims on the
# built zip, and the real-Krita tests run the plugin on this version. Blender bundles Python 3.11 and
# keeps the installed websockets, the version the rest of the test suite runs against.
KRITA_WEBSOCKETS = "16.1.1"
KRITA_PYTHON = "3.10"
# Blender 4.2 to 5.0 bundle Python 3.11: the pip download of the installed version is made for it.
BLENDER_PYTHON = "3.11"


class BuildError(Exception):
    """The build cannot go on; the message says what to do."""


def plugin_source(name: str) -> Path:
    """Folder of `plugins/<name>`: package data of `ganbridge.plugins`, in a checkout or installed."""
    folder = Path(str(importlib.resources.files("ganbridge.plugins"))) / name
    if not folder.is_dir():
        raise BuildError(f"the plugin sources plugins/{name} are not installed with ganbridge")
    return folder


def websockets_wheel(wheel: Path | None = None, version: str | None = None, python: str = BLENDER_PYTHON) -> Path:
    """The pure-Python websockets wheel to bundle for a host whose Python is `python` (major.minor):
    the one given, else the cached or downloaded wheel of `version` (default: the installed version,
    the one the tests ran against)."""
    if wheel is not None:
        if not wheel.is_file() or not re.match(r"websockets-[\d.]+-py3-none-any\.whl$", wheel.name):
            raise BuildError(f"{wheel} is not a websockets-X-py3-none-any.whl file")
        _check_requires_python(wheel, python)
        return wheel
    if version is None:
        version = importlib.metadata.version("websockets")
    cache = Path(platformdirs.user_cache_dir("ganbridge")) / "wheels"
    found = cache / f"websockets-{version}-py3-none-any.whl"
    if found.is_file():
        return found
    cache.mkdir(parents=True, exist_ok=True)
    # --python-version makes pip refuse a release whose Requires-Python excludes the host's Python.
    cmd = [
        sys.executable, "-m", "pip", "download", f"websockets=={version}", "--no-deps", "--only-binary=:all:",
        "--platform", "any", "--implementation", "py", "--python-version", python, "-d", str(cache), "-q",
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0 or not found.is_file():
        raise BuildError(
            f"could not fetch the pure-Python websockets {version} wheel with pip ({proc.stderr.strip()[-300:]}); "
            "download websockets-*-py3-none-any.whl yourself and pass --wheel FILE"
        )
    return found


def wheel_requires_python(wheel: Path) -> str:
    """The Requires-Python of a wheel's METADATA ("" when it declares none)."""
    try:
        with zipfile.ZipFile(wheel) as z:
            names = [n for n in z.namelist() if re.fullmatch(r"[^/]+\.dist-info/METADATA", n)]
            metadata = z.read(names[0]).decode("utf-8", "replace") if len(names) == 1 else None
    except zipfile.BadZipFile:
        metadata = None
    if metadata is None:
        raise BuildError(f"{wheel} is not a wheel: no single .dist-info/METADATA in a readable zip")
    # Header fields end at the first blank line; the long description after it is free text.
    for line in metadata.split("\n\n", 1)[0].splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() == "requires-python":
            return value.strip()
    return ""


def _check_requires_python(wheel: Path, python: str) -> None:
    """A wheel given with --wheel must run on the host's Python, or the plugin fails on import there."""
    # packaging is installed with mido (a dependency of ganbridge); imported here as only this needs it.
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    requires = wheel_requires_python(wheel)
    try:
        ok = SpecifierSet(requires).contains(python)
    except InvalidSpecifier:
        raise BuildError(f"{wheel} declares an unreadable Requires-Python {requires!r}") from None
    if not ok:
        raise BuildError(
            f"{wheel.name} requires Python {requires}, but this plugin must run on the host's Python {python}; "
            "pass an older websockets wheel, or leave out --wheel for the tested default"
        )


def blender_ext_command(blender_ext: Path | None = None) -> list[str]:
    """How to run Blender's extension CLI: the given blender_ext.py, bpy in this Python, or `blender`."""
    if blender_ext is None and os.environ.get("GANBRIDGE_BLENDER_EXT"):
        blender_ext = Path(os.environ["GANBRIDGE_BLENDER_EXT"])
    if blender_ext is not None:
        if not blender_ext.is_file():
            raise BuildError(f"{blender_ext} does not exist")
        return [sys.executable, str(blender_ext)]
    spec = importlib.util.find_spec("bpy")
    if spec is not None and spec.submodule_search_locations:
        root = Path(next(iter(spec.submodule_search_locations)))
        found = sorted(root.glob("*/scripts/addons_core/bl_pkg/cli/blender_ext.py"))
        if found:
            return [sys.executable, str(found[-1])]
    blender = shutil.which("blender")
    if blender:
        return [blender, "--factory-startup", "--command", "extension"]
    raise BuildError(
        "Blender's extension builder was not found: put `blender` (4.2 or newer) on PATH, "
        "pip install bpy, or pass --blender-ext path/to/blender_ext.py"
    )


def _manifest(template: str, version: str, wheel_name: str) -> str:
    text = re.sub(r'^version = ".*"$', f'version = "{version}"', template, count=1, flags=re.M)
    return re.sub(r"^wheels = \[.*\]$", f'wheels = ["./wheels/{wheel_name}"]', text, count=1, flags=re.M)


def build_blender(out_dir: Path, wheel: Path | None = None, blender_ext: Path | None = None) -> Path:
    """Build and validate the extension zip; returns its path."""
    command = blender_ext_command(blender_ext)
    wheel = websockets_wheel(wheel, python=BLENDER_PYTHON)
    source = plugin_source("blender")
    shared = [plugin_source("client") / name for name in SHARED_MODULES]
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir.resolve() / f"ganbridge-blender-{__version__}.zip"
    with tempfile.TemporaryDirectory() as tmp:
        stage = Path(tmp) / "ganbridge"
        stage.mkdir()
        for path in source.iterdir():
            if path.suffix == ".py":
                shutil.copy2(path, stage / path.name)
        for path in shared:
            shutil.copy2(path, stage / path.name)
        (stage / "wheels").mkdir()
        shutil.copy2(wheel, stage / "wheels" / wheel.name)
        template = (source / "blender_manifest.toml").read_text()
        (stage / "blender_manifest.toml").write_text(_manifest(template, __version__, wheel.name))
        _run([*command, "build", "--source-dir", str(stage), "--output-filepath", str(target)], "build")
    _run([*command, "validate", str(target)], "validate")
    return target


def _run(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        out = (proc.stdout + proc.stderr).strip()
        raise BuildError(f"Blender's extension {what} failed:\n{out[-2000:]}")


def build_krita(out_dir: Path, wheel: Path | None = None) -> Path:
    """Build the importable Krita plugin zip; returns its path."""
    wheel = websockets_wheel(wheel, KRITA_WEBSOCKETS, KRITA_PYTHON)
    source = plugin_source("krita")
    package = source / "ganbridge"
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir.resolve() / f"ganbridge-krita-{__version__}.zip"
    tmp = target.with_suffix(".part")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
        z.write(source / "ganbridge.desktop", "ganbridge.desktop")
        z.write(source / "ganbridge.action", "ganbridge.action")
        z.writestr("ganbridge/", "")  # Krita's importer finds the package by its folder entry
        for path in sorted(package.glob("*.py")):
            z.write(path, f"ganbridge/{path.name}")
        for name in SHARED_MODULES:
            z.write(plugin_source("client") / name, f"ganbridge/{name}")
        with zipfile.ZipFile(wheel) as w:
            for name in w.namelist():
                if name.startswith("websockets/") and name.endswith((".py", "py.typed")):
                    z.writestr(f"ganbridge/vendor/{name}", w.read(name))
    tmp.replace(target)
    return target
