"""`python -m ganbridge` as a user runs it, in throw-away folders, and what a mistake must look like."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def user_env(tmp: Path, **extra: str) -> dict[str, str]:
    """The environment of a user whose ganbridge folders are under `tmp` (not this machine's)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GANBRIDGE_")}
    config = tmp / "config.toml"
    if not config.exists():
        config.write_text("")  # not this machine's config file: no settings of its own
    env |= {
        "GANBRIDGE_CONFIG": str(config),
        "GANBRIDGE_DATA_DIR": str(tmp / "data"),
        "GANBRIDGE_OUTPUT_DIR": str(tmp / "outputs"),
        "GANBRIDGE_MODELS_DIR": str(tmp / "models"),
        "PYTHONUNBUFFERED": "1",
    }
    return env | extra


def ganbridge(tmp: Path, *args: str, cwd: Path | None = None, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ganbridge", *args],
        cwd=cwd or tmp,
        env=user_env(tmp, **env),
        capture_output=True,
        text=True,
        timeout=300,
    )


def one_line(r: subprocess.CompletedProcess, code: int, *needles: str) -> str:
    """The command failed with `code` and said so in exactly one line holding every needle."""
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert r.returncode == code, (r.returncode, r.stderr)
    assert len(lines) == 1 and lines[0].startswith("ganbridge"), r.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def without_modules(tmp: Path, *modules: str) -> dict[str, str]:
    """Env that makes importing `modules` fail for real, as where they are not installed: a
    sitecustomize that sets them to None in sys.modules (Python's own way of blocking an import,
    which raises ModuleNotFoundError naming the module)."""
    shadow = tmp / "shadow"
    shadow.mkdir(exist_ok=True)
    (shadow / "sitecustomize.py").write_text("import sys\n" + "".join(f"sys.modules[{m!r}] = None\n" for m in modules))
    return {"PYTHONPATH": os.pathsep.join(filter(None, [str(shadow), os.environ.get("PYTHONPATH")]))}
