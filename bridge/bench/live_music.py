"""The live music loop heard at the MIDI port: is each slider move heard from the next bar line?

A real `ganbridge serve` with its virtual MIDI port on JACK (a server the bench starts with the
dummy driver, if `jackd` is installed and none is running) loops a live music session
(/ganbridge/live/loop over OSC, one bar at 240 bpm: a bar a second); a JACK MIDI input records
what it plays. Each change is sent a tenth of a bar after a bar line, with new slider positions;
the change counts as heard when the first bar that starts after its frame came back plays that
frame's notes, every one of them, in order, and nothing else.
"""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import time
from typing import Any

from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import OscMessageBuilder

from ganbridge.bench.common import BridgeProcess

BAR = 1.0  # seconds: one 4/4 bar at 240 bpm


class Osc:
    """A UDP peer of the bridge's OSC door, with its own reply port."""

    def __init__(self, port: int):
        self.port = port
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(30)
        self.send("/ganbridge/reply_to", self.sock.getsockname()[1])

    def send(self, address: str, *args: Any) -> None:
        builder = OscMessageBuilder(address)
        for arg in args:
            builder.add_arg(arg)
        self.sock.sendto(builder.build().dgram, ("127.0.0.1", self.port))

    def until(self, address: str, *first: Any) -> tuple[float, list[OscMessage]]:
        """Messages up to one at `address` whose arguments start with `first`; when it came."""
        seen = []
        while True:
            msg = OscMessage(self.sock.recv(65536))
            seen.append(msg)
            if msg.address == "/ganbridge/error":
                raise RuntimeError(f"bridge said {msg.params}")
            if msg.address == address and list(msg.params[: len(first)]) == list(first):
                return time.perf_counter(), seen


def _frame_notes(messages: list[OscMessage], live: str, seq: int) -> list[tuple[float, int, int]]:
    """A frame's notes as (start beat, channel, pitch), in the order the loop plays them."""
    return sorted(
        (float(m.params[5]), int(m.params[2]), int(m.params[3]))
        for m in messages
        if m.address == "/ganbridge/live/note" and m.params[0] == live and m.params[1] == seq
    )


def loop_changes(changes: int, device: str) -> dict[str, Any]:
    """Of `changes` slider moves, how many were heard from the next bar line (see module docstring)."""
    if shutil.which("jackd") is None:
        return {"skipped": "needs JACK: apt install jackd2"}
    import mido

    jack = subprocess.Popen(
        ["jackd", "--no-realtime", "-d", "dummy"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    time.sleep(1.5)
    name = f"gbbench{random.randrange(10**6)}"
    bridge = BridgeProcess(device, True, midi=(name, "UNIX_JACK"))
    try:
        import asyncio

        asyncio.run(bridge.wait_ready())
        backend = mido.Backend("mido.backends.rtmidi/UNIX_JACK", load=True)
        port = next(n for n in backend.get_input_names() if name in n)
        heard: list[tuple[float, tuple[int, int]]] = []  # when, (channel, pitch)

        def record(msg: Any) -> None:  # a mido message (its fields are dynamic)
            if msg.type == "note_on" and msg.velocity > 0:
                heard.append((time.perf_counter(), (msg.channel, msg.note)))

        osc = Osc(bridge.osc_port)
        osc.send("/ganbridge/live/open", "music", "bars", 1, "tempo", 240.0, "seed", 3)
        _, seen = osc.until("/ganbridge/live/frame")
        live = next(m.params[0] for m in seen if m.address == "/ganbridge/live/opened")
        first = _frame_notes(seen, live, 0)
        rng = random.Random(1)
        results = []
        with backend.open_input(port, callback=record):
            osc.send("/ganbridge/live/loop", live)
            osc.until("/ganbridge/live/looping", live)
            while not heard:
                time.sleep(0.01)
            start = heard[0][0] - first[0][0] * BAR / 4  # the loop's first bar line
            for seq in range(1, changes + 1):
                line = start + BAR * (int((time.perf_counter() - start) / BAR) + 1)
                time.sleep(max(0.0, line + 0.1 * BAR - time.perf_counter()))
                osc.send("/ganbridge/live/move", live, *[rng.uniform(-3, 3) for _ in range(3)])
                came, seen = osc.until("/ganbridge/live/frame", live, seq)
                expected = [(channel, pitch) for _, channel, pitch in _frame_notes(seen, live, seq)]
                bar = start + BAR * (int((came - start) / BAR) + 1)  # the first bar line after it came
                time.sleep(max(0.0, bar + BAR + 0.05 - time.perf_counter()))
                played = [note for t, note in heard if bar - 0.02 <= t < bar + BAR - 0.02]
                results.append(played == expected)
            osc.send("/ganbridge/stop")
        return {"changes": changes, "heard_at_next_bar": sum(results), "share": sum(results) / changes}
    finally:
        bridge.close()
        jack.terminate()
        jack.wait(timeout=10)
