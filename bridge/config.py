"""Settings: defaults < config file (TOML) < environment (GANBRIDGE_*) < command line."""

from __future__ import annotations

import ipaddress
import os
import secrets
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from platformdirs import user_config_dir, user_data_dir

APP = "ganbridge"


class ConfigError(ValueError):
    pass


@dataclass
class Settings:
    host: str = "127.0.0.1"
    ws_port: int = 8765
    osc_port: int = 9100
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    token: str | None = None
    output_dir: Path = field(default_factory=lambda: Path(user_data_dir(APP)) / "outputs")
    data_dir: Path = field(default_factory=lambda: Path(user_data_dir(APP)))
    models_dir: Path = field(default_factory=lambda: Path(user_data_dir(APP)) / "models")
    allowed_origins: list[str] = field(default_factory=list)
    max_count: int = 16
    max_steps: int = 32
    max_queue: int = 256
    max_message_bytes: int = 1 << 20
    batching: bool = True
    batch_window_ms: float = 4.0
    log_level: str = "info"
    midi_out: str = "ganbridge"  # the virtual MIDI port music plays out of; "" or "none": no port
    midi_api: str = "auto"  # auto, LINUX_ALSA, UNIX_JACK, MACOSX_CORE, WINDOWS_MM
    soundfont: Path | None = None  # General MIDI .sf2 for WAV output; default: the system's

    @property
    def db_path(self) -> Path:
        return self.data_dir / "items.sqlite3"

    def limits(self) -> dict[str, int]:
        return {
            "max_count": self.max_count,
            "max_steps": self.max_steps,
            "max_queue": self.max_queue,
            "max_message_bytes": self.max_message_bytes,
        }


def default_config_path() -> Path:
    return Path(os.environ.get("GANBRIDGE_CONFIG") or Path(user_config_dir(APP)) / "config.toml")


def _coerce(name: str, kind: Any, value: Any) -> Any:
    kind = str(kind)
    try:
        if "Path" in kind:
            return Path(value).expanduser()
        if "list" in kind:
            return [v.strip() for v in value.split(",") if v.strip()] if isinstance(value, str) else list(value)
        if "bool" in kind:
            if isinstance(value, bool):
                return value
            if str(value).lower() in ("1", "true", "yes", "on"):
                return True
            if str(value).lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if "int" in kind and "str" not in kind:
            return int(value)
        if "float" in kind:
            return float(value)
        return None if value is None else str(value)
    except (TypeError, ValueError):
        raise ConfigError(f"setting {name}: {value!r} is not a valid {kind}") from None


def load_settings(config_file: Path | None = None, overrides: dict[str, Any] | None = None) -> Settings:
    settings = Settings()
    types = {f.name: f.type for f in fields(Settings)}
    layers: list[tuple[str, dict[str, Any]]] = []
    path = config_file or default_config_path()
    if path.is_file():
        try:
            layers.append((str(path), tomllib.loads(path.read_text())))
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{path}: {e}") from None
    elif config_file is not None:
        raise ConfigError(f"{config_file}: no such config file")
    env = {k[len("GANBRIDGE_") :].lower(): v for k, v in os.environ.items() if k.startswith("GANBRIDGE_")}
    env.pop("config", None)
    layers.append(("environment", env))
    layers.append(("command line", {k: v for k, v in (overrides or {}).items() if v is not None}))
    for source, values in layers:
        for key, value in values.items():
            if key not in types:
                raise ConfigError(f"{source}: unknown setting {key!r}; known: {', '.join(types)}")
            setattr(settings, key, _coerce(key, types[key], value))
    return settings


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def secure_settings(settings: Settings) -> str | None:
    """Enforce: a non-loopback bind needs a token. Returns a generated token to print, if any."""
    if is_loopback(settings.host) or settings.token:
        return None
    settings.token = secrets.token_urlsafe(24)
    return settings.token
