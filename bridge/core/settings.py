"""Settings: one validated model, read in layers: defaults < config file (TOML) < environment (GANBRIDGE_*) <
command line.

`load_settings` remembers which layer gave each value, so that a bad one is refused before anything
starts, in one line naming the setting, where it came from and what is allowed. The reference page
docs/reference/configuration.md is rendered from the same fields (`python -m ganbridge.core.settings
--write-reference`), so the documented bounds are the enforced ones.
"""

from __future__ import annotations

import argparse
import difflib
import ipaddress
import os
import secrets
import sys
import tomllib
import types
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Annotated, Any, Literal, NoReturn, Union, get_args, get_origin

import annotated_types
from platformdirs import user_config_dir, user_data_dir
from pydantic import (
    Field,
    FiniteFloat,
    PrivateAttr,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic.config import JsonDict
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails, PydanticCustomError, PydanticUndefined
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

APP = "ganbridge"
ENV_PREFIX = "GANBRIDGE_"
# GANBRIDGE_ variables that are not settings (the config file itself, the plugin build, the test
# hosts): a shell that exports them must still be able to run `ganbridge serve`.
NOT_SETTINGS = frozenset({"GANBRIDGE_CONFIG", "GANBRIDGE_BLENDER_EXT", "GANBRIDGE_KRITA_JOB", "GANBRIDGE_REPLY_FD"})
NOT_SETTINGS_PREFIXES = ("GANBRIDGE_BLENDER_PYTHON_",)
SWITCH_ON = ("1", "true", "yes", "on")
SWITCH_OFF = ("0", "false", "no", "off")
REFERENCE_BEGIN = "<!-- settings:begin -->"
REFERENCE_END = "<!-- settings:end -->"
REFERENCE_PAGE = Path("docs/reference/configuration.md")
REFRESH_COMMAND = "python -m ganbridge.core.settings --write-reference"


class ConfigError(ValueError):
    """A bad setting, file or variable; the message is the one line a user sees."""


def _setting(
    default: Any = PydanticUndefined,
    *,
    about: str,
    factory: Callable[[], Any] | None = None,
    allowed: str | None = None,
    flag: str | None = None,
    shown: str | None = None,
    **bounds: Any,
) -> Any:
    """A field with what the reference page shows beside its description: the allowed values when
    its bounds alone do not say them, its command-line flag, and a default that is not the same on
    every machine."""
    extra: JsonDict = {key: value for key, value in (("allowed", allowed), ("flag", flag), ("shown", shown)) if value}
    if factory is not None:
        return Field(default_factory=factory, description=about, json_schema_extra=extra, **bounds)
    return Field(default, description=about, json_schema_extra=extra, **bounds)


def _data_dir(*parts: str) -> Callable[[], Path]:
    return lambda: Path(user_data_dir(APP), *parts)


Origin = Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9+.-]*://[^/\s]+$")]
DATA_DIR_SHOWN = "<user data dir>/ganbridge"
SWITCH = "true or false (1/true/yes/on, 0/false/no/off)"


class Settings(BaseSettings):
    # Direct construction (tests, `make_settings`) takes only its arguments: the file and environment
    # layers are read by load_settings, which knows where each value came from.
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, case_sensitive=False, extra="forbid", validate_assignment=True
    )

    host: str = _setting(
        "127.0.0.1",
        about="address both doors bind; anything but loopback requires a token",
        allowed="an address or host name, no spaces",
        flag="--host",
        pattern=r"^\S+$",
    )
    ws_port: int = _setting(8765, about="WebSocket port (0: any free port)", flag="--ws-port", ge=0, le=65535)
    osc_port: int = _setting(9100, about="OSC UDP port (0: any free port)", flag="--osc-port", ge=0, le=65535)
    device: str = _setting(
        "auto",
        about="where generators run: auto is CUDA when there is a GPU, else the CPU",
        allowed="auto, cpu, cuda or cuda:N",
        flag="--device",
        pattern=r"^(auto|cpu|cuda(:\d+)?)$",
    )
    token: str | None = _setting(
        None,
        about="clients must send it in `hello` (OSC: `/ganbridge/hello s:token`)",
        allowed="any text; empty: none",
        flag="--token",
    )
    output_dir: Path = _setting(
        about="where item files are written (nowhere else)",
        factory=_data_dir("outputs"),
        flag="--output",
        shown=f"{DATA_DIR_SHOWN}/outputs",
    )
    data_dir: Path = _setting(
        about="holds `items.sqlite3` (recipes and ratings)", factory=_data_dir(), shown=DATA_DIR_SHOWN
    )
    models_dir: Path = _setting(
        about="your own weights, e.g. `texture/*.safetensors`",
        factory=_data_dir("models"),
        shown=f"{DATA_DIR_SHOWN}/models",
    )
    allowed_origins: Annotated[list[Origin], NoDecode] = _setting(
        about="browser Origins allowed to connect; other browser pages are refused (HTTP 403)",
        factory=list,
        allowed="origins SCHEME://HOST[:PORT], e.g. https://example.org (no path), comma-separated in the environment",
    )
    max_count: int = _setting(16, about="most items per request (`count`, steer `count`)", ge=1)
    max_steps: int = _setting(32, about="most interpolation steps", ge=1)
    # Waiting items: each client may have max_client_queue; when the bridge holds max_queue in all,
    # only a client holding more than an equal share of it is refused (`busy`).
    max_queue: int = _setting(
        256, about="items waiting in all; when full, only a client holding more than an equal share gets `busy`", ge=1
    )
    max_client_queue: int = _setting(64, about="items one client may have waiting; more gets `busy`", ge=1)
    # Cost budgets ("Limits and fairness" in the docs): one request, and all of one client's queued and running
    # requests together. Pixels count every output image, maps included (each map costs about
    # what the forward does): the default request budget is five 2048x2048 textures, or one with
    # all four maps.
    max_request_pixels: int = _setting(
        5 * 2048 * 2048,
        about="cost budget of one image or texture request: pixels × items, maps included "
        "(five 2048² textures, or one with all four maps); more gets `too_large`",
        ge=1,
    )
    max_client_pixels: int = _setting(
        16 * 2048 * 2048, about="pixels of one client's queued and running requests together; more gets `busy`", ge=1
    )
    max_request_bars: int = _setting(
        256, about="cost budget of one music request: bars × items (or interpolation steps)", ge=1
    )
    max_client_bars: int = _setting(
        1024, about="bars of one client's queued and running music requests together; more gets `busy`", ge=1
    )
    max_message_bytes: int = _setting(
        1 << 20, about="bigger client messages get `too_large` (8× this closes the connection)", ge=1
    )
    # Open WebSocket connections, and the replies one of them may leave unread before it is closed.
    max_connections: int = _setting(
        64, about="open WebSocket connections; past it a new one is closed with code 1013 and a reason", ge=1
    )
    max_unsent_bytes: int = _setting(
        256 << 20,
        about="replies a connection may leave unread; past it, it is closed with code 1008 and a reason",
        ge=1,
    )
    batching: bool = _setting(
        True,
        about="micro-batching of concurrent same-shape requests",
        allowed=SWITCH,
        flag="--no-batching",
    )
    batch_window_ms: FiniteFloat = _setting(4.0, about="how long the worker waits for more requests to batch", ge=0)
    log_level: Literal["debug", "info", "warning", "error"] = _setting(
        "info", about="`debug` logs one line per request", flag="--log-level"
    )
    midi_out: str = _setting(
        "ganbridge",
        about="name of the virtual MIDI port `/ganbridge/play` uses",
        allowed='a port name; "" or none: no port',
        flag="--midi-out",
    )
    midi_api: Literal["auto", "LINUX_ALSA", "UNIX_JACK", "MACOSX_CORE", "WINDOWS_MM"] = _setting(
        "auto", about="MIDI system of that port; auto tries ALSA, CoreMIDI, Windows MM, then JACK", flag="--midi-api"
    )
    soundfont: Path | None = _setting(
        None,
        about="General MIDI `.sf2` for `format: \"wav\"`; none: the system's (Debian's `fluid-soundfont-gm`)",
        allowed="a path (~ is expanded); empty: none",
        flag="--soundfont",
    )
    credentials: bool = _setting(
        True,
        about="sign every file with C2PA content credentials (docs/provenance.md); false: recipes only",
        allowed=SWITCH,
    )
    allow_ai_training: bool = _setting(
        False,
        about="what the credentials say of using the files to train AI or mine data: allowed if true",
        allowed=SWITCH,
    )
    credentials_cert: Path | None = _setting(
        None,
        about="your own signing certificate chain (PEM, signer first); none: a local identity under `data_dir`/identity",
        allowed="a path (~ is expanded), with `credentials_key`; empty: none",
    )
    credentials_key: Path | None = _setting(
        None, about="the private key (PEM) of `credentials_cert`", allowed="a path (~ is expanded); empty: none"
    )
    # Where generation runs: "local" (this process) or "ray" (Ray Serve replicas; see docs/deploy.md).
    backend: Literal["local", "ray"] = _setting(
        "local",
        about="`local` renders in this process, `ray` on Ray Serve replicas (docs/deploy.md)",
        flag="--backend",
    )
    ray_address: str = _setting(
        "local",
        about="the Ray cluster: local is a private Ray on this machine",
        allowed="local, auto, HOST:PORT (e.g. HOST:6379) or ray://HOST:PORT",
        flag="--ray-address",
        pattern=r"^(local|auto|ray://\S+|\S+:\d{1,5})$",
    )
    ray_max_batch_size: int = _setting(
        16,
        about="items per Serve batch on a replica (and per micro-batch a bridge sends)",
        flag="deploy --max-batch-size",
        ge=1,
    )
    ray_batch_wait_ms: FiniteFloat = _setting(5.0, about="how long a replica waits to fill a batch", ge=0)
    ray_min_replicas: int = _setting(
        1, about="replicas per checkpoint (at most ray_max_replicas)", flag="deploy --min-replicas", ge=1
    )
    ray_max_replicas: int = _setting(
        1,
        about="most replicas per checkpoint; above ray_min_replicas turns autoscaling on",
        flag="deploy --max-replicas",
        ge=1,
    )
    ray_target_ongoing: int = _setting(16, about="autoscaling target: ongoing requests per replica", ge=1)
    ray_num_gpus: FiniteFloat | None = _setting(
        None,
        about="GPUs per replica; auto: 1 when there are enough GPUs for every replica, else an equal share, 0 without GPUs",
        allowed="at least 0, or auto (empty: auto)",
        flag="deploy --gpus",
        shown="auto",
        ge=0,
    )
    ray_cpus_per_replica: FiniteFloat = _setting(
        0.1, about="CPUs Ray reserves per replica; small, so every checkpoint fits on a laptop", ge=0
    )
    ray_torch_threads: int = _setting(0, about="torch threads in each replica; 0: the node's cores", ge=0)
    ray_timeout_s: FiniteFloat = _setting(30.0, about="deadline of every call to the cluster", gt=0)
    ray_deploy_timeout_s: FiniteFloat = _setting(120.0, about="how long a deployment may take to run", gt=0)
    ray_inflight: int = _setting(32, about="micro-batches a bridge keeps in flight to the cluster", ge=1)
    # Not empty: `deploy --delete` removes every application whose name starts with it.
    ray_app_prefix: str = _setting(
        "ganbridge-",
        about="Serve application names: prefix + kind + `-` + checkpoint",
        allowed="letters, digits, _ . - (not empty)",
        pattern=r"^[A-Za-z0-9_.-]+$",
    )

    _sources: dict[str, str] = PrivateAttr(default_factory=dict)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_as_number(cls, value: Any, info: ValidationInfo) -> Any:
        # Pydantic takes true as 1; in a config file that is a mistake, not a count.
        field = cls.model_fields.get(info.field_name or "")
        if isinstance(value, bool) and field is not None and _base_type(field.annotation) in (int, float):
            raise PydanticCustomError("bool_not_number", "a bool is not a number")
        return value

    @field_validator("token", "soundfont", "ray_num_gpus", "credentials_cert", "credentials_key", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any, info: ValidationInfo) -> Any:
        # The environment cannot unset a value, and TOML has no null: "" (and "auto" for GPUs) mean none.
        nothing = ("", "auto") if info.field_name == "ray_num_gpus" else ("",)
        return None if isinstance(value, str) and value.strip().lower() in nothing else value

    @field_validator("output_dir", "data_dir", "models_dir", mode="before")
    @classmethod
    def _not_empty(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            raise ValueError("an empty path")  # Path("") would be the current folder
        return value

    @field_validator("output_dir", "data_dir", "models_dir", "soundfont", "credentials_cert", "credentials_key")
    @classmethod
    def _expand_home(cls, value: Path | None) -> Path | None:
        return value.expanduser() if value is not None else None

    @field_validator("allowed_origins", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("batching", mode="before")
    @classmethod
    def _switch(cls, value: Any) -> Any:
        if isinstance(value, bool):
            return value
        word = str(value).strip().lower() if isinstance(value, str | int) else None
        if word in SWITCH_ON or word in SWITCH_OFF:
            return word in SWITCH_ON
        raise ValueError("not a switch")

    @property
    def db_path(self) -> Path:
        return self.data_dir / "items.sqlite3"

    def source_of(self, name: str) -> str:
        """Where the value of setting `name` came from, as a ConfigError says it."""
        if name in self._sources:
            return f"from {self._sources[name]}"
        return "set in code" if name in self.model_fields_set else "the default"

    def check(self) -> None:
        """Refuse combinations of values that each field's own bounds let through."""
        if self.ray_min_replicas > self.ray_max_replicas:
            low, high = "ray_min_replicas", "ray_max_replicas"
            raise ConfigError(
                f"setting {low} = {self.ray_min_replicas} ({self.source_of(low)}): must be at most "
                f"{high} = {self.ray_max_replicas} ({self.source_of(high)})"
            )

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


# --- what a field allows, said once for errors and the reference page ------------------------------


def _base_type(annotation: Any) -> Any:
    """The type under Optional and Annotated: int for `int | None`, list for `list[str]`."""
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    if get_origin(annotation) in (Union, types.UnionType):
        annotation = next(arg for arg in get_args(annotation) if arg is not type(None))
        return _base_type(annotation)
    return get_origin(annotation) or annotation


def _extra(field: FieldInfo) -> dict[str, Any]:
    return field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}


def _bounds_text(field: FieldInfo) -> str:
    low = next((m.ge for m in field.metadata if isinstance(m, annotated_types.Ge)), None)
    high = next((m.le for m in field.metadata if isinstance(m, annotated_types.Le)), None)
    above = next((m.gt for m in field.metadata if isinstance(m, annotated_types.Gt)), None)
    if low is not None and high is not None:
        return f"{low}-{high}"
    if low is not None:
        return f"at least {low}"
    if above is not None:
        return f"more than {above}"
    return ""


def allowed_text(name: str) -> str:
    """What setting `name` accepts, in words: its choices, its bounds, or what its field says."""
    field = Settings.model_fields[name]
    if "allowed" in _extra(field):
        return str(_extra(field)["allowed"])
    if get_origin(field.annotation) is Literal:
        return "one of " + ", ".join(str(choice) for choice in get_args(field.annotation))
    if _base_type(field.annotation) is Path:
        return "a path, not empty (~ is expanded)"
    return _bounds_text(field) or "any text"


TYPE_NAMES: dict[Any, tuple[str, str]] = {
    int: ("integer", "a whole number"),
    float: ("number", "a finite number"),
    bool: ("boolean", "true or false"),
    str: ("text", "text"),
    Path: ("path", "a path"),
    list: ("list of text", "a list of text"),
    Literal: ("choice", "text"),
}
# Pydantic error types that say the value broke a bound or a choice, not that it had the wrong type.
BOUND_ERRORS = frozenset({
    "greater_than_equal", "less_than_equal", "greater_than", "less_than", "literal_error",
    "string_pattern_mismatch", "string_too_short", "value_error",
})  # fmt: skip


def _requirement(name: str, error_type: str) -> str:
    allowed = allowed_text(name)
    if error_type in BOUND_ERRORS:
        return allowed
    kind = TYPE_NAMES.get(_base_type(Settings.model_fields[name].annotation), ("", "a valid value"))[1]
    return kind if allowed in ("any text", kind) else f"{kind}, {allowed}"


def _shown_value(value: Any) -> str:
    return repr(str(value)) if isinstance(value, Path) else repr(value)


def _refusal(error: ErrorDetails, values: dict[str, Any], sources: dict[str, str]) -> str:
    name = str(error["loc"][0]) if error["loc"] else ""
    if name not in Settings.model_fields:
        return f"settings: {error['msg']}"
    shown = _shown_value(values.get(name, error["input"]))
    source = sources.get(name, "the default")
    culprit = f"; {error['input']!r} is not" if len(error["loc"]) > 1 else ""  # one item of a list
    return f"setting {name} = {shown} (from {source}): must be {_requirement(name, error['type'])}{culprit}"


# --- layers ---------------------------------------------------------------------------------------

Layer = dict[str, tuple[Any, str]]  # setting -> (raw value, where it came from)


def default_config_path() -> Path:
    return Path(os.environ.get("GANBRIDGE_CONFIG") or Path(user_config_dir(APP)) / "config.toml").expanduser()


def _refuse_unknown(name: str, source: str, known: Iterable[str]) -> NoReturn:
    known = list(known)
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"did you mean {close[0]}? " if close else ""
    raise ConfigError(f"unknown setting {name!r} (from {source}): {hint}known settings: {', '.join(known)}")


def _file_layer(config_file: Path | None) -> Layer:
    path = config_file.expanduser() if config_file else default_config_path()
    if not path.is_file():
        if config_file is not None:
            raise ConfigError(f"{config_file}: no such config file")
        if os.environ.get("GANBRIDGE_CONFIG"):
            raise ConfigError(f"{path} (from GANBRIDGE_CONFIG): no such config file")
        return {}
    try:
        data = TomlConfigSettingsSource(Settings, toml_file=path).toml_data
    except (tomllib.TOMLDecodeError, OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"config file {path}: {e}") from None
    for key in data:
        if key not in Settings.model_fields:
            _refuse_unknown(key, str(path), Settings.model_fields)
    return {key: (value, str(path)) for key, value in data.items()}


def _is_setting_variable(variable: str) -> bool:
    upper = variable.upper()
    return upper.startswith(ENV_PREFIX) and upper not in NOT_SETTINGS and not upper.startswith(NOT_SETTINGS_PREFIXES)


def _env_layer() -> Layer:
    variables = {var[len(ENV_PREFIX) :].lower(): var for var in os.environ if _is_setting_variable(var)}
    for name, variable in variables.items():
        if name not in Settings.model_fields:
            _refuse_unknown(name, variable, Settings.model_fields)
    values = EnvSettingsSource(Settings, case_sensitive=False, env_prefix=ENV_PREFIX)()
    return {name: (value, variables.get(name, ENV_PREFIX + name.upper())) for name, value in values.items()}


def _command_line_layer(overrides: dict[str, Any]) -> Layer:
    layer: Layer = {}
    for name, value in overrides.items():
        if value is None:
            continue  # a flag not given
        if name not in Settings.model_fields:
            _refuse_unknown(name, "the command line", Settings.model_fields)
        flag = _extra(Settings.model_fields[name]).get("flag")
        layer[name] = (value, f"the command line, {flag}" if flag else "the command line")
    return layer


def load_settings(config_file: Path | None = None, overrides: dict[str, Any] | None = None) -> Settings:
    """Defaults < `config_file` (or GANBRIDGE_CONFIG, or the user config folder's) < GANBRIDGE_* <
    `overrides` (the command line; None values are flags not given). Raises ConfigError, one line."""
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for layer in (_file_layer(config_file), _env_layer(), _command_line_layer(overrides or {})):
        for name, (value, source) in layer.items():
            values[name], sources[name] = value, source
    try:
        settings = Settings.model_validate(values)
    except ValidationError as e:
        raise ConfigError(_refusal(e.errors(include_url=False)[0], values, sources)) from None
    settings._sources = sources
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


# --- the reference page ---------------------------------------------------------------------------


def _default_text(field: FieldInfo) -> str:
    if "shown" in _extra(field):
        return f"`{_extra(field)['shown']}`"
    value = field.get_default(call_default_factory=True)
    if value is None or value == []:
        return "none"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{value}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _row(name: str, field: FieldInfo) -> str:
    flag = _extra(field).get("flag")
    cells = (
        f"`{name}`",
        f"`{ENV_PREFIX}{name.upper()}`",
        f"`{flag}`" if flag else "",
        TYPE_NAMES[_base_type(field.annotation)][0],
        _default_text(field),
        allowed_text(name),
        field.description or "",
    )
    return "| " + " | ".join(_cell(cell) for cell in cells) + " |"


def reference_markdown() -> str:
    """The Markdown table of every setting, as docs/reference/configuration.md holds it."""
    lines = [
        "| setting | environment | flag | type | default | allowed | meaning |",
        "|---|---|---|---|---|---|---|",
        *(_row(name, field) for name, field in Settings.model_fields.items()),
    ]
    return "\n".join(lines) + "\n"


def refresh_reference(page: str) -> str:
    """`page` with the table between its markers rendered anew."""
    head, begin, rest = page.partition(REFERENCE_BEGIN)
    _, end, tail = rest.partition(REFERENCE_END)
    if not begin or not end:
        raise ValueError(f"the page lacks the markers {REFERENCE_BEGIN} and {REFERENCE_END}")
    return f"{head}{REFERENCE_BEGIN}\n{reference_markdown()}{REFERENCE_END}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ganbridge.core.settings", description=__doc__)
    parser.add_argument(
        "--write-reference", nargs="?", const=str(REFERENCE_PAGE), metavar="PAGE",
        help=f"render the settings table into PAGE (default {REFERENCE_PAGE}) between its markers",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.write_reference is None:
        sys.stdout.write(reference_markdown())
        return 0
    page = Path(args.write_reference)
    page.write_text(refresh_reference(page.read_text(encoding="utf-8")), encoding="utf-8")
    print(f"wrote the settings table into {page}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
