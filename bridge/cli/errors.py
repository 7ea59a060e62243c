"""Mistakes a user can fix, as one line each: which exceptions end a command and what they print.

Everything else (a bug) keeps its traceback, so a report of it has what a fix needs.
"""

from __future__ import annotations

# Optional packages, by the top-level module whose import fails without them: (pip name, extra).
EXTRAS: dict[str, tuple[str, str]] = {
    "skimage": ("scikit-image", "train"),
    "music21": ("music21", "train"),
    "fontTools": ("fonttools", "train"),
    "ray": ("ray[serve]", "ray"),
    "psutil": ("psutil", "ray"),
}


class UserError(Exception):
    """A mistake the user can fix; the message says how. `code` is the exit status: 2 for a bad
    argument or setting, 1 for something this machine lacks."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


def one_line(error: Exception) -> tuple[str, int] | None:
    """The line to print and the exit status for `error`, or None when it is a bug."""
    if isinstance(error, UserError):
        return str(error), error.code
    if isinstance(error, ModuleNotFoundError):
        return missing_extra(error)
    if isinstance(error, OSError):  # a file or folder the user named, a port, a full disk
        return os_error(error), 1
    return None


def missing_extra(error: ModuleNotFoundError) -> tuple[str, int] | None:
    module = (error.name or "").partition(".")[0]
    if module not in EXTRAS:
        return None  # a dependency every install has: a broken install, keep the traceback
    found = extra_needed(module)
    return str(found), found.code


def extra_needed(module: str) -> UserError:
    """`module` (a key of EXTRAS) is not installed: which extra brings it."""
    package, extra = EXTRAS[module]
    return UserError(f"this needs {package}, which is not installed here: pip install 'ganbridge[{extra}]'", code=1)


def os_error(error: OSError) -> str:
    if error.filename is None:
        return str(error)
    return f"{error.filename}: {error.strerror or error}"
