"""Settings: layers, bounds, one-line refusals naming setting, source and what is allowed, and the
reference page generated from the model."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
from pydantic import ValidationError

from ganbridge.cli.main import build_parser
from ganbridge.core.settings import (
    REFERENCE_BEGIN,
    REFERENCE_END,
    REFRESH_COMMAND,
    ConfigError,
    Settings,
    allowed_text,
    load_settings,
    reference_markdown,
    refresh_reference,
)

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "reference" / "configuration.md"


@pytest.fixture(autouse=True)
def clean_environment(tmp_path, monkeypatch) -> Path:
    """No GANBRIDGE_* variable or config file of the machine running the tests leaks in; returns
    the (empty) config file the settings read."""
    for variable in [v for v in os.environ if v.upper().startswith("GANBRIDGE_")]:
        monkeypatch.delenv(variable)
    config = tmp_path / "config.toml"
    config.write_text("")
    monkeypatch.setenv("GANBRIDGE_CONFIG", str(config))
    return config


def refused(config_file: Path | None = None, overrides: dict | None = None) -> str:
    with pytest.raises(ConfigError) as refusal:
        load_settings(config_file, overrides)
    message = str(refusal.value)
    assert "\n" not in message, message
    return message


# --- one bad value, one line ----------------------------------------------------------------------


def test_a_negative_count_from_the_environment(monkeypatch):
    monkeypatch.setenv("GANBRIDGE_MAX_COUNT", "-5")
    assert refused() == "setting max_count = '-5' (from GANBRIDGE_MAX_COUNT): must be at least 1"


def test_a_negative_count_from_the_config_file(clean_environment):
    clean_environment.write_text("max_count = -5\n")
    assert refused() == f"setting max_count = -5 (from {clean_environment}): must be at least 1"


def test_a_word_for_a_count_says_it_must_be_a_whole_number(monkeypatch):
    monkeypatch.setenv("GANBRIDGE_MAX_COUNT", "lots")
    assert refused() == "setting max_count = 'lots' (from GANBRIDGE_MAX_COUNT): must be a whole number, at least 1"


def test_an_unknown_device(monkeypatch):
    monkeypatch.setenv("GANBRIDGE_DEVICE", "tpu")
    assert refused() == "setting device = 'tpu' (from GANBRIDGE_DEVICE): must be auto, cpu, cuda or cuda:N"


def test_a_nan_batch_window_from_the_environment(monkeypatch):
    monkeypatch.setenv("GANBRIDGE_BATCH_WINDOW_MS", "nan")
    assert refused() == (
        "setting batch_window_ms = 'nan' (from GANBRIDGE_BATCH_WINDOW_MS): must be a finite number, at least 0"
    )


def test_a_nan_batch_window_from_the_config_file(clean_environment):
    clean_environment.write_text("batch_window_ms = nan\n")
    assert refused() == f"setting batch_window_ms = nan (from {clean_environment}): must be a finite number, at least 0"


def test_an_unknown_log_level(monkeypatch):
    monkeypatch.setenv("GANBRIDGE_LOG_LEVEL", "loud")
    assert refused() == (
        "setting log_level = 'loud' (from GANBRIDGE_LOG_LEVEL): must be one of debug, info, warning, error"
    )


def test_a_port_out_of_range_from_the_command_line():
    message = refused(overrides={"ws_port": 99999})
    assert message == "setting ws_port = 99999 (from the command line, --ws-port): must be 0-65535"


def test_an_unknown_key_in_the_config_file(clean_environment):
    clean_environment.write_text("wsport = 9000\n")
    message = refused()
    assert message.startswith(f"unknown setting 'wsport' (from {clean_environment}): did you mean ws_port? ")
    assert "known settings: host, ws_port, osc_port," in message and "ray_app_prefix" in message


def test_a_table_in_the_config_file_is_an_unknown_key(clean_environment):
    clean_environment.write_text("[ray]\nmin_replicas = 2\n")
    assert refused().startswith(f"unknown setting 'ray' (from {clean_environment}): known settings: host,")


def test_an_unknown_environment_variable(monkeypatch):
    monkeypatch.setenv("GANBRIDGE_WSPORT", "9000")
    message = refused()
    assert message.startswith("unknown setting 'wsport' (from GANBRIDGE_WSPORT): did you mean ws_port? ")
    assert "known settings: host," in message


def test_a_bad_switch(monkeypatch):
    monkeypatch.setenv("GANBRIDGE_BATCHING", "maybe")
    assert refused() == (
        "setting batching = 'maybe' (from GANBRIDGE_BATCHING): must be true or false (1/true/yes/on, 0/false/no/off)"
    )


def test_a_bool_is_not_a_number(clean_environment):
    clean_environment.write_text("max_count = true\n")
    assert refused() == f"setting max_count = True (from {clean_environment}): must be a whole number, at least 1"


def test_a_fraction_is_not_a_count(clean_environment):
    clean_environment.write_text("max_queue = 4.5\n")
    assert refused() == f"setting max_queue = 4.5 (from {clean_environment}): must be a whole number, at least 1"


def test_a_bad_origin_names_the_item(monkeypatch):
    monkeypatch.setenv("GANBRIDGE_ALLOWED_ORIGINS", "https://ok.example,example.org")
    message = refused()
    assert message.startswith(
        "setting allowed_origins = 'https://ok.example,example.org' (from GANBRIDGE_ALLOWED_ORIGINS)"
    )
    assert message.endswith("; 'example.org' is not") and "SCHEME://HOST[:PORT]" in message


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"backend": "cloud"},
            "setting backend = 'cloud' (from the command line, --backend): must be one of local, ray",
        ),
        ({"ray_timeout_s": 0}, "setting ray_timeout_s = 0 (from the command line): must be more than 0"),
        ({"ray_app_prefix": ""}, "setting ray_app_prefix = '' (from the command line): must be letters"),
        ({"midi_api": "ALSA"}, "must be one of auto, LINUX_ALSA, UNIX_JACK, MACOSX_CORE, WINDOWS_MM"),
        ({"host": "0.0.0.0 "}, "setting host = '0.0.0.0 ' (from the command line, --host): must be an address"),
        ({"ray_address": "somewhere"}, "must be local, auto, HOST:PORT"),
        ({"ray_num_gpus": -1}, "setting ray_num_gpus = -1 (from the command line, deploy --gpus): must be at least 0"),
        ({"output_dir": ""}, "setting output_dir = '' (from the command line, --output): must be a path, not empty"),
        ({"osc_port": -1}, "setting osc_port = -1 (from the command line, --osc-port): must be 0-65535"),
    ],
)
def test_more_bad_values_are_refused_with_what_is_allowed(overrides, message):
    assert message in refused(overrides=overrides)


def test_more_replicas_at_least_than_at_most_names_both_and_their_sources(monkeypatch):
    monkeypatch.setenv("GANBRIDGE_RAY_MAX_REPLICAS", "2")
    assert refused(overrides={"backend": "ray", "ray_min_replicas": 3}) == (
        "setting ray_min_replicas = 3 (from the command line, deploy --min-replicas): must be at most "
        "ray_max_replicas = 2 (from GANBRIDGE_RAY_MAX_REPLICAS)"
    )


def test_a_config_file_that_is_not_there_or_not_toml(tmp_path, clean_environment, monkeypatch):
    assert refused(tmp_path / "nope.toml") == f"{tmp_path / 'nope.toml'}: no such config file"
    monkeypatch.setenv("GANBRIDGE_CONFIG", str(tmp_path / "typo.toml"))
    assert refused() == f"{tmp_path / 'typo.toml'} (from GANBRIDGE_CONFIG): no such config file"
    clean_environment.write_text("ws_port = = 1\n")
    assert refused(clean_environment).startswith(f"config file {clean_environment}: ")


def test_assignment_is_validated_too():
    s = Settings()
    s.max_count = 3
    s.output_dir = "~/gb-out"  # type: ignore[assignment]  # as make_settings may pass text
    assert s.max_count == 3 and s.output_dir == Path("~/gb-out").expanduser()
    with pytest.raises(ValidationError):
        s.max_count = 0
    with pytest.raises(ValidationError):
        s.log_level = "loud"  # type: ignore[assignment]


# --- layers and good values -----------------------------------------------------------------------


def test_layers_defaults_then_file_then_environment_then_command_line(clean_environment, monkeypatch):
    clean_environment.write_text("ws_port = 9000\nosc_port = 9001\nmax_count = 4\n")
    monkeypatch.setenv("GANBRIDGE_WS_PORT", "9100")
    monkeypatch.setenv("GANBRIDGE_OSC_PORT", "9101")
    s = load_settings(None, {"ws_port": 9200, "osc_port": None})
    assert (s.ws_port, s.osc_port, s.max_count, s.max_steps) == (9200, 9101, 4, 32)
    assert s.source_of("ws_port") == "from the command line, --ws-port"
    assert s.source_of("osc_port") == "from GANBRIDGE_OSC_PORT"
    assert s.source_of("max_count") == f"from {clean_environment}"
    assert s.source_of("max_steps") == "the default"


def test_an_explicit_config_file_wins_over_GANBRIDGE_CONFIG(tmp_path, clean_environment):
    clean_environment.write_text("max_count = 4\n")
    other = tmp_path / "other.toml"
    other.write_text("max_count = 5\n")
    assert load_settings(other).max_count == 5 and load_settings().max_count == 4


def test_defaults_are_valid_and_as_documented():
    s = load_settings()
    assert (s.host, s.ws_port, s.osc_port, s.device, s.token) == ("127.0.0.1", 8765, 9100, "auto", None)
    assert (s.max_count, s.max_request_pixels, s.batching, s.batch_window_ms) == (16, 5 * 2048 * 2048, True, 4.0)
    assert (s.backend, s.ray_address, s.ray_num_gpus, s.midi_api) == ("local", "local", None, "auto")
    assert s.db_path == s.data_dir / "items.sqlite3"
    assert s.limits()["max_count"] == 16 and s.budgets()["bars"] == (256, 1024)
    assert Settings.model_validate(Settings().model_dump()) == Settings()


@pytest.mark.parametrize(("word", "value"), [(w, True) for w in ("1", "true", "Yes", "ON")] + [
    (w, False) for w in ("0", "false", "no", "Off")
])  # fmt: skip
def test_switches_from_the_environment(monkeypatch, word, value):
    monkeypatch.setenv("GANBRIDGE_BATCHING", word)
    assert load_settings().batching is value


def test_good_values_from_the_environment(monkeypatch):
    for name, value in {
        "ALLOWED_ORIGINS": " https://a.example , http://b.example:8080,", "WS_PORT": "0", "OSC_PORT": "65535",
        "DEVICE": "cuda:1", "OUTPUT_DIR": "~/gb-out", "TOKEN": "", "RAY_NUM_GPUS": "0.5", "SOUNDFONT": "",
        "BATCH_WINDOW_MS": "0", "RAY_ADDRESS": "ray://head:10001", "MIDI_OUT": "",
    }.items():  # fmt: skip
        monkeypatch.setenv(f"GANBRIDGE_{name}", value)
    s = load_settings()
    assert s.allowed_origins == ["https://a.example", "http://b.example:8080"]
    assert (s.ws_port, s.osc_port, s.device, s.token, s.soundfont) == (0, 65535, "cuda:1", None, None)
    assert s.output_dir == Path.home() / "gb-out" and s.ray_num_gpus == 0.5 and s.batch_window_ms == 0
    assert (s.ray_address, s.midi_out) == ("ray://head:10001", "")


def test_good_values_from_the_config_file(clean_environment):
    clean_environment.write_text(
        'allowed_origins = ["https://a.example"]\nbatching = false\nray_num_gpus = 0\nsoundfont = "~/gm.sf2"\n'
        'backend = "ray"\nray_min_replicas = 2\nray_max_replicas = 4\nray_address = "10.0.0.2:6379"\n'
    )
    s = load_settings()
    assert s.allowed_origins == ["https://a.example"] and s.batching is False and s.ray_num_gpus == 0
    assert s.soundfont == Path.home() / "gm.sf2" and (s.ray_min_replicas, s.ray_max_replicas) == (2, 4)


def test_auto_means_none_only_where_it_is_a_choice(monkeypatch):
    monkeypatch.setenv("GANBRIDGE_RAY_NUM_GPUS", "auto")
    monkeypatch.setenv("GANBRIDGE_TOKEN", "auto")
    s = load_settings()
    assert s.ray_num_gpus is None and s.token == "auto"


def test_variables_that_are_not_settings_are_left_alone(monkeypatch):
    for variable in (
        "GANBRIDGE_BLENDER_PYTHON_4_5",
        "GANBRIDGE_BLENDER_EXT",
        "GANBRIDGE_KRITA_JOB",
        "GANBRIDGE_REPLY_FD",
    ):
        monkeypatch.setenv(variable, "x")
    assert load_settings().ws_port == 8765


# --- the reference page ---------------------------------------------------------------------------


def test_the_reference_page_shows_what_the_model_renders():
    page = PAGE.read_text(encoding="utf-8")
    assert REFERENCE_BEGIN in page and REFERENCE_END in page
    assert refresh_reference(page) == page, (
        f"{PAGE.relative_to(ROOT)} is out of date with bridge/core/settings.py; refresh it with: {REFRESH_COMMAND}"
    )


def test_the_reference_lists_every_setting_with_its_variable_and_allowed_values():
    table = reference_markdown()
    for name, field in Settings.model_fields.items():
        assert field.description, f"setting {name} has no description"
        row = next(line for line in table.splitlines() if line.startswith(f"| `{name}` |"))
        assert f"`GANBRIDGE_{name.upper()}`" in row and allowed_text(name) in row
    assert "| `ws_port` | `GANBRIDGE_WS_PORT` | `--ws-port` | integer | `8765` | 0-65535 |" in table


def test_the_example_config_on_the_reference_page_loads(tmp_path):
    example = re.search(r"```toml\n(.*?)```", PAGE.read_text(encoding="utf-8"), re.S)
    assert example is not None
    config = tmp_path / "example.toml"
    config.write_text(example.group(1))
    assert load_settings(config).max_count == tomllib.loads(example.group(1))["max_count"]


def test_every_flag_the_reference_names_exists():
    commands = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    for name, field in Settings.model_fields.items():
        flag = (field.json_schema_extra or {}).get("flag")  # type: ignore[union-attr]
        if flag:
            command, _, option = str(flag).rpartition(" ")
            assert option in commands[command or "serve"]._option_string_actions, f"{name}: {flag}"


def test_refreshing_a_page_keeps_what_is_around_the_table():
    page = f"intro\n{REFERENCE_BEGIN}\nstale\n{REFERENCE_END}\noutro\n"
    assert refresh_reference(page) == f"intro\n{REFERENCE_BEGIN}\n{reference_markdown()}{REFERENCE_END}\noutro\n"
    with pytest.raises(ValueError, match="markers"):
        refresh_reference("no markers here")


# --- the command line -----------------------------------------------------------------------------


def serve(tmp_path: Path, *args: str, **env: str) -> tuple[subprocess.CompletedProcess, float]:
    config = tmp_path / "serve.toml"
    config.write_text("")
    base = {k: v for k, v in os.environ.items() if not k.upper().startswith("GANBRIDGE_")}
    # Were the value let through, the bridge would start here, not on the user's ports and folders.
    base.update(GANBRIDGE_CONFIG=str(config), GANBRIDGE_DATA_DIR=str(tmp_path), GANBRIDGE_OUTPUT_DIR=str(tmp_path / "o"),
                GANBRIDGE_MODELS_DIR=str(tmp_path / "m"), GANBRIDGE_MIDI_OUT="none", GANBRIDGE_OSC_PORT="0")  # fmt: skip
    base.update(env)
    t0 = time.monotonic()
    out = subprocess.run(
        [sys.executable, "-m", "ganbridge", "serve", *args], cwd=ROOT, env=base, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    return out, time.monotonic() - t0


def refusal_line(out: subprocess.CompletedProcess, seconds: float) -> str:
    """The one line a refused `ganbridge serve` printed: quickly, with status 2, no traceback."""
    assert out.returncode == 2 and seconds < 30, (out.returncode, seconds, out.stderr)
    assert "Traceback" not in out.stdout + out.stderr
    lines = out.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("ganbridge"), out.stderr
    return lines[0]


def test_serve_refuses_a_bad_port_in_one_line(tmp_path):
    # The command line may refuse it itself (an argument type) or pass it on to the settings.
    line = refusal_line(*serve(tmp_path, "--ws-port", "99999"))
    assert "--ws-port" in line and "99999" in line and "65535" in line, line


def test_serve_refuses_a_bad_log_level_in_one_line(tmp_path):
    line = refusal_line(*serve(tmp_path, "--ws-port", "0", GANBRIDGE_LOG_LEVEL="loud"))
    assert line.endswith(
        ": setting log_level = 'loud' (from GANBRIDGE_LOG_LEVEL): must be one of debug, info, warning, error"
    ), line


def test_serve_refuses_a_bad_flag_value_the_settings_check(tmp_path):
    line = refusal_line(*serve(tmp_path, "--ws-port", "0", "--midi-api", "ALSA"))
    assert line.endswith(
        ": setting midi_api = 'ALSA' (from the command line, --midi-api): "
        "must be one of auto, LINUX_ALSA, UNIX_JACK, MACOSX_CORE, WINDOWS_MM"
    ), line


def test_serve_refuses_an_unknown_key_in_its_config_file(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text("max_cuont = 3\n")
    line = refusal_line(*serve(tmp_path, "--ws-port", "0", GANBRIDGE_CONFIG=str(config)))
    assert f": unknown setting 'max_cuont' (from {config}): did you mean max_count?" in line, line
