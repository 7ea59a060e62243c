"""A virtual MIDI output port that plays music items in real time, for a DAW to record.

mido with the python-rtmidi backend opens a virtual port on whichever MIDI system is there:
ALSA or JACK on Linux, CoreMIDI on macOS. Where there is none (a server without ALSA and with no
JACK server running), opening fails with `MidiUnavailable` and a message that says what is
missing; everything else in the bridge goes on working. One item plays at a time: a new `play`
stops the one before, and `stop` (or closing) silences every note that is still sounding.
"""

from __future__ import annotations

import io
import logging
import threading
import time
from collections.abc import Callable

import mido

log = logging.getLogger("ganbridge.midi")

# rtmidi API names in the order to try when the user leaves the choice to us.
AUTO_APIS = ("LINUX_ALSA", "MACOSX_CORE", "WINDOWS_MM", "UNIX_JACK")


class MidiUnavailable(RuntimeError):
    """No MIDI system to open a port on; the message says what to install or start."""


def open_virtual_port(name: str, api: str = "auto") -> mido.ports.BaseOutput:
    """A virtual output port called `name` on `api` (an rtmidi API name, or auto)."""
    try:
        compiled = mido.Backend("mido.backends.rtmidi", load=True).module.get_api_names()
    except ImportError:
        raise MidiUnavailable("MIDI output needs python-rtmidi: pip install python-rtmidi") from None
    apis = [a for a in AUTO_APIS if a in compiled] if api == "auto" else [api]
    errors = []
    for candidate in apis:
        try:
            backend = mido.Backend(f"mido.backends.rtmidi/{candidate}", load=True)
            return backend.open_output(name, virtual=True)
        except Exception as e:  # rtmidi raises SystemError / its own errors per API
            errors.append(f"{candidate}: {e}")
    raise MidiUnavailable(
        f"cannot open a virtual MIDI port {name!r} ({'; '.join(errors) or 'no MIDI API'}). Playback needs a "
        "MIDI system: ALSA (Linux, /dev/snd/seq), a running JACK server (jackd), or CoreMIDI (macOS)"
    )


class MidiPlayer:
    """Plays MIDI files out of one virtual port, on a background thread."""

    def __init__(self, name: str, api: str = "auto", opener: Callable[[str, str], object] = open_virtual_port):
        self.name = name
        self.api = api
        self._opener = opener
        self._port = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.playing: str | None = None  # the item now playing

    def open(self) -> None:
        """Open the port now (a DAW can then see it before the first play); raises MidiUnavailable."""
        with self._lock:
            if self._port is None:
                self._port = self._opener(self.name, self.api)
                log.info("MIDI output port %r is open", self.name)

    @property
    def is_open(self) -> bool:
        return self._port is not None

    def play(self, midi: bytes, item: str, on_end: Callable[[str, bool], None] | None = None) -> float:
        """Start playing a MIDI file; returns its length in seconds. `on_end(item, stopped)` runs
        when it finishes or is stopped."""
        self.open()
        song = mido.MidiFile(file=io.BytesIO(midi))
        self.stop()
        self._stop = threading.Event()
        self.playing = item
        self._thread = threading.Thread(
            target=self._run, args=(song, item, self._stop, on_end), name="midi-play", daemon=True
        )
        self._thread.start()
        return float(song.length)

    def _run(self, song: mido.MidiFile, item: str, stop: threading.Event, on_end) -> None:
        sounding: set[tuple[int, int]] = set()
        start = time.perf_counter()
        at = 0.0
        try:
            for msg in song:  # times are seconds since the previous message, tempo applied
                at += msg.time
                delay = start + at - time.perf_counter()
                if delay > 0 and stop.wait(delay):
                    break
                if stop.is_set():
                    break
                if msg.is_meta:
                    continue
                self._port.send(msg)
                if msg.type == "note_on" and msg.velocity > 0:
                    sounding.add((msg.channel, msg.note))
                elif msg.type in ("note_on", "note_off"):
                    sounding.discard((msg.channel, msg.note))
        except Exception:
            log.exception("MIDI playback of %s failed", item)
        finally:
            for channel, note in sorted(sounding):
                self._port.send(mido.Message("note_off", channel=channel, note=note, velocity=0))
            if self.playing == item:
                self.playing = None
            if on_end is not None:
                on_end(item, stop.is_set())

    def stop(self) -> bool:
        """Stop what is playing (its sounding notes get note-offs); True if something was."""
        thread = self._thread
        if thread is None or not thread.is_alive():
            return False
        self._stop.set()
        thread.join(timeout=2.0)
        return True

    def close(self) -> None:
        self.stop()
        with self._lock:
            if self._port is not None:
                self._port.close()
                self._port = None
