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
    # Waiting items: each client may have max_client_queue; when the bridge holds max_queue in all,
    # only a client holding more than an equal share of it is refused (`busy`).
    max_queue: int = 256
    max_client_queue: int = 64
    # Cost budgets (docs/configuration.md, "Limits and fairness"): one request, and all of one client's queued and running
    # requests together. Pixels count every output image, maps included: the default request
    # budget is four 2048x2048 textures, or one with both maps.
    max_request_pixels: int = 4 * 2048 * 2048
    max_client_pixels: int = 16 * 2048 * 2048
    max_request_bars: int = 256
    max_client_bars: int = 1024
    max_message_bytes: int = 1 << 20
    # Open WebSocket connections, and the replies one of them may leave unread before it is closed.
    max_connections: int = 64
    max_unsent_bytes: int = 256 << 20
    batching: bool = True
    batch_window_ms: float = 4.0
    log_level: str = "info"
    midi_out: str = "ganbridge"  # the virtual MIDI port music plays out of; "" or "none": no port
    midi_api: str = "auto"  # auto, LINUX_ALSA, UNIX_JACK, MACOSX_CORE, WINDOWS_MM
    soundfont: Path | None = None  # General MIDI .sf2 for WAV output; default: the system's
    # Where generation runs: "local" (this process) or "ray" (Ray Serve replicas; see docs/scaling-out.md).
    backend: str = "local"
    ray_address: str = "local"  # local: a private Ray on this machine; auto; HOST:6379; ray://HOST:10001
    ray_max_batch_size: int = 16  # Serve's dynamic batching, per replica
    ray_batch_wait_ms: float = 5.0
    ray_min_replicas: int = 1  # per checkpoint; max > min turns autoscaling on
    ray_max_replicas: int = 1
    ray_target_ongoing: int = 16  # autoscaling target: ongoing requests per replica
    ray_num_gpus: float | None = None  # GPUs per replica; default: 1 when the cluster has GPUs, else 0
    ray_cpus_per_replica: float = 0.25  # what Ray reserves; small, so every checkpoint fits on a laptop
    ray_torch_threads: int = 0  # torch threads in each replica; 0: the node's cores
    ray_timeout_s: float = 30.0  # every call to the cluster gives up after this
    ray_deploy_timeout_s: float = 120.0
    ray_inflight: int = 32  # requests this bridge keeps in flight to the cluster
    ray_app_prefix: str = "ganbridge-"  # Serve application names: PREFIX + kind + "-" + checkpoint

    @property
    def db_path(self) -> Path:
        return self.data_dir / "items.sqlite3"

    def check(self) -> None:
        """Reject values and combinations no single field's type catches."""
        for name in self.limits():
            if getattr(self, name) < 1:
                raise ConfigError(f"setting {name}: {getattr(self, name)} must be at least 1")
        if self.backend not in ("local", "ray"):
            raise ConfigError(f"setting backend: {self.backend!r} is not one of local, ray")
        if self.backend == "ray":
            if not 1 <= self.ray_min_replicas <= self.ray_max_replicas:
                raise ConfigError("ray_min_replicas must be at least 1 and at most ray_max_replicas")
            if self.ray_max_batch_size < 1 or self.ray_inflight < 1 or self.ray_timeout_s <= 0:
                raise ConfigError("ray_max_batch_size and ray_inflight must be >= 1, ray_timeout_s > 0")

    def limits(self) -> dict[str, int]:
        """Every limit a client may meet; `welcome` lists them."""
        names = ("max_count", "max_steps", "max_queue", "max_client_queue", "max_request_pixels",
                 "max_client_pixels", "max_request_bars", "max_client_bars", "max_message_bytes",
                 "max_connections", "max_unsent_bytes")  # fmt: skip
        return {name: getattr(self, name) for name in names}

    def budgets(self) -> dict[str, tuple[int, int]]:
        """Cost unit -> (per request, per client); a unit not listed has no budget."""
        return {
            "pixels": (self.max_request_pixels, self.max_client_pixels),
            "bars": (self.max_request_bars, self.max_client_bars),
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
    settings.check()
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
