"""`ganbridge serve` as a user starts it: bad ports and settings, a port in use, and a start-up log
with one line per fact (MIDI, a user model hiding a shipped one) and no C-library noise."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

from ganbridge.core.registry import SHIPPED_WEIGHTS
from tests.cli.support import ROOT, ganbridge, one_line, user_env

LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ ")


def test_bad_ports_and_log_level_are_refused_in_one_line(tmp_path):
    one_line(ganbridge(tmp_path, "serve", "--ws-port", "99999"), 2, "--ws-port", "99999", "65535")
    one_line(ganbridge(tmp_path, "serve", "--osc-port", "-1"), 2, "--osc-port")
    one_line(ganbridge(tmp_path, "serve", "--log-level", "loud"), 2, "--log-level")
    # the same values from the environment: the settings refuse them
    one_line(ganbridge(tmp_path, "serve", GANBRIDGE_LOG_LEVEL="loud"), 2, "log_level")
    one_line(ganbridge(tmp_path, "serve", GANBRIDGE_WS_PORT="99999"), 2, "ws_port")


def test_a_port_in_use_names_the_port_and_the_flag(tmp_path):
    with socket.socket() as tcp, socket.socket(type=socket.SOCK_DGRAM) as udp:
        tcp.bind(("127.0.0.1", 0))
        tcp.listen()
        udp.bind(("127.0.0.1", 0))
        ws, osc = tcp.getsockname()[1], udp.getsockname()[1]
        quiet = ("--log-level", "warning")  # the log of a normal start is not the point here
        r = ganbridge(tmp_path, "serve", *quiet, "--ws-port", str(ws), "--osc-port", "0", GANBRIDGE_MIDI_OUT="none")
        assert one_line(r, 1).endswith(
            f"WebSocket port {ws} is in use (another bridge?); choose another with --ws-port or the ws_port setting"
        )
        r = ganbridge(tmp_path, "serve", *quiet, "--ws-port", "0", "--osc-port", str(osc), GANBRIDGE_MIDI_OUT="none")
        assert one_line(r, 1).endswith(
            f"OSC port {osc} is in use (another bridge?); choose another with --osc-port or the osc_port setting"
        )


def start_up_log(tmp: Path) -> list[str]:
    """Everything `serve` writes to stderr up to its line with the WebSocket address."""
    cmd = [sys.executable, "-m", "ganbridge", "serve", "--ws-port", "0", "--osc-port", "0", "--device", "cpu"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=user_env(tmp), stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line.rstrip("\n"))
            if "WebSocket: ws://" in line:
                return lines
        raise AssertionError(f"serve exited with {proc.wait()} before listening:\n" + "\n".join(lines))
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def test_start_up_log_has_one_midi_line_no_library_noise_and_names_hidden_models(tmp_path):
    # a user model named like a shipped one (a real, loadable model: the shipped grass, as brick)
    mine = tmp_path / "models" / "texture"
    mine.mkdir(parents=True)
    for suffix in (".safetensors", ".json"):
        shutil.copy(SHIPPED_WEIGHTS / "texture" / f"grass{suffix}", mine / f"brick{suffix}")
    lines = start_up_log(tmp_path)
    noise = [line for line in lines if not LOG_LINE.match(line)]
    assert not noise, "\n".join(lines)  # ALSA / JACK probing prints nothing of its own
    midi = [line for line in lines if "MIDI" in line]
    assert len(midi) == 1 and "MIDI out: " in midi[0], "\n".join(lines)
    hidden = [line for line in lines if "hides the shipped" in line]
    assert len(hidden) == 1 and str(mine / "brick.safetensors") in hidden[0], "\n".join(lines)
