"""`ganbridge plugin build HOST`: the installable plugin packages.

Blender: the extension's sources plus the shared protocol client, the pure-Python `websockets` wheel
in `wheels/`, built and then validated by the extension CLI that ships inside Blender (or bpy).
Krita: a zip for Tools > Scripts > Import Python Plugin from File: `ganbridge.desktop`,
`ganbridge.action` and the `ganbridge/` package with the shared modules and websockets (unpacked from
the same wheel into `ganbridge/vendor/`, since Krita has no way to install wheels).
"""

from __future__ import annotations

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
SHARED_MODULES = ("ganbridge_client.py", "ganbridge_schema.py")


class BuildError(Exception):
    """The build cannot go on; the message says what to do."""


def plugin_source(name: str) -> Path:
    """Folder of `plugins/<name>`: package data of `ganbridge.plugins`, in a checkout or installed."""
    folder = Path(str(importlib.resources.files("ganbridge.plugins"))) / name
    if not folder.is_dir():
        raise BuildError(f"the plugin sources plugins/{name} are not installed with ganbridge")
    return folder


def websockets_wheel(wheel: Path | None = None) -> Path:
    """The pure-Python websockets wheel to bundle: the one given, else the cached or downloaded one
    matching the installed version (the version the tests ran against)."""
    if wheel is not None:
        if not wheel.is_file() or not re.match(r"websockets-[\d.]+-py3-none-any\.whl$", wheel.name):
            raise BuildError(f"{wheel} is not a websockets-X-py3-none-any.whl file")
        return wheel
    import websockets

    version = websockets.__version__
    cache = Path(platformdirs.user_cache_dir("ganbridge")) / "wheels"
    found = cache / f"websockets-{version}-py3-none-any.whl"
    if found.is_file():
        return found
    cache.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable, "-m", "pip", "download", f"websockets=={version}", "--no-deps", "--only-binary=:all:",
        "--platform", "any", "--implementation", "py", "--python-version", "3.11", "-d", str(cache), "-q",
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0 or not found.is_file():
        raise BuildError(
            f"could not fetch the pure-Python websockets {version} wheel with pip ({proc.stderr.strip()[-300:]}); "
            "download websockets-*-py3-none-any.whl yourself and pass --wheel FILE"
        )
    return found


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
    wheel = websockets_wheel(wheel)
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
    wheel = websockets_wheel(wheel)
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
