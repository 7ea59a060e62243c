"""Settings and devices as commands see them: a bad one is a UserError, printed in one line."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ganbridge.cli.errors import UserError

if TYPE_CHECKING:  # the settings module is imported when a command runs, not for --help
    from ganbridge.core.credentials import ContentCredentials
    from ganbridge.core.settings import Settings


def load(args: argparse.Namespace, **overrides: Any) -> Settings:
    """Defaults < config file (--config) < environment < `overrides` (None: not given)."""
    from ganbridge.core.settings import ConfigError, load_settings

    config = Path(args.config) if getattr(args, "config", None) else None
    try:
        return load_settings(config, overrides)
    except ConfigError as e:
        raise UserError(str(e)) from None


def credentials(settings: Settings) -> ContentCredentials | None:
    """The signer for the files a command writes (None with `credentials` off)."""
    from ganbridge.core.credentials import credentials_for
    from ganbridge.core.settings import ConfigError

    try:
        return credentials_for(settings)
    except ConfigError as e:
        raise UserError(str(e)) from None


def device(name: str) -> str:
    """`auto` resolved; a GPU this machine lacks is refused with what it has."""
    from ganbridge.core.registry import resolve_device

    try:
        return resolve_device(name)
    except ValueError as e:
        raise UserError(str(e)) from None


def models_dir(settings: Settings) -> Path:
    """The user's models folder of this platform (or the setting), as an absolute path: it holds
    one sub-folder per kind."""
    return settings.models_dir.expanduser().resolve()
