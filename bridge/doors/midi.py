"""A virtual MIDI output port that plays music items in real time, for a DAW to record.

mido with the python-rtmidi backend opens a virtual port on whichever MIDI system is there:
ALSA or JACK on Linux, CoreMIDI on macOS. Where there is none (a server without ALSA and with no
JACK server running), opening fails with `MidiUnavailable` and a message that says what is
missing; everything else in the bridge goes on working. One item plays at a time: a new `play`
stops the one before, and `stop` (or closing) silences every note that is still sounding.

`loop` plays a live music session instead: bar after bar, each bar from the newest frame the
session has at that bar's start, so a slider move is heard at the next bar boundary. Bars are
timed from one clock (no gap builds up between them), and a note that still sounds when the
same pitch starts again on its channel, or when the loop stops, gets its note-off first.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import mido
from mido.ports import BaseOutput

log = logging.getLogger("ganbridge.midi")

# rtmidi API names in the order to try when the user leaves the choice to us, and what to call them.
AUTO_APIS = ("LINUX_ALSA", "MACOSX_CORE", "WINDOWS_MM", "UNIX_JACK")
API_NAMES = {"LINUX_ALSA": "ALSA", "MACOSX_CORE": "CoreMIDI", "WINDOWS_MM": "Windows MIDI", "UNIX_JACK": "JACK"}
# rtmidi's errors for the usual absences, said shortly.
SHORT_REASONS = {"ALSA sequencer": "no ALSA sequencer", "JACK server not running": "JACK not running"}


class MidiUnavailable(RuntimeError):
    """No MIDI system to open a port on; the message says what to install or start, `reason`
    says shortly why each system failed."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


@contextlib.contextmanager
def captured_stderr() -> Iterator[list[str]]:
    """While the block runs, whatever C libraries write to file descriptor 2 is kept out of the
    terminal and put in the list (as text) when it ends.

    ALSA and JACK print several lines each there when they are absent, in the middle of the
    bridge's log. Python's own stderr writes from other threads in the block land in the list
    too; the block is kept to the few milliseconds of opening a port."""
    captured: list[str] = []
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no fd 2 at all (a GUI process): nothing can reach a terminal anyway
        yield captured
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield captured
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            captured.append(sink.read().decode(errors="replace"))


def short_reason(api: str, error: Exception) -> str:
    message = str(error)
    for known, short in SHORT_REASONS.items():
        if known in message:
            return short
    return f"{API_NAMES.get(api, api)}: {message}"


def open_virtual_port(name: str, api: str = "auto") -> tuple[BaseOutput, str]:
    """A virtual output port called `name` on `api` (an rtmidi API name, or auto), and the API's
    name it opened on."""
    try:
        from mido.backends import rtmidi as rtmidi_backend
    except ImportError:
        raise MidiUnavailable(
            "MIDI output needs python-rtmidi: pip install python-rtmidi", "no python-rtmidi"
        ) from None
    compiled = rtmidi_backend.get_api_names()
    apis = [a for a in AUTO_APIS if a in compiled] if api == "auto" else [api]
    reasons = []
    with captured_stderr() as noise:
        for candidate in apis:
            try:
                backend = mido.Backend(f"mido.backends.rtmidi/{candidate}", load=True)
                return backend.open_output(name, virtual=True), API_NAMES.get(candidate, candidate)
            except Exception as e:  # rtmidi raises SystemError / its own errors per API
                reasons.append(short_reason(candidate, e))
    if said := "".join(noise).strip():
        log.debug("the MIDI libraries said: %s", said)
    reason = ", ".join(reasons) or "no MIDI API compiled into python-rtmidi"
    raise MidiUnavailable(
        f"cannot open a virtual MIDI port {name!r} ({reason}). Playback needs a MIDI system: ALSA (Linux, "
        "/dev/snd/seq), a running JACK server (jackd), or CoreMIDI (macOS)",
        reason,
    )


class MidiPlayer:
    """Plays MIDI files out of one virtual port, on a background thread."""

    def __init__(self, name: str, api: str = "auto"):
        self.name = name
        self.api = api
        self._port: BaseOutput | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.playing: str | None = None  # the item now playing

    def open(self) -> BaseOutput:
        """Open the port now (a DAW can then see it before the first play); raises MidiUnavailable."""
        with self._lock:
            if self._port is None:
                self._port, api = open_virtual_port(self.name, self.api)
                log.info("MIDI out: port %r on %s", self.name, api)
            return self._port

    @property
    def is_open(self) -> bool:
        return self._port is not None

    def play(self, midi: bytes, item: str, on_end: Callable[[str, bool], None] | None = None) -> float:
        """Start playing a MIDI file; returns its length in seconds. `on_end(item, stopped)` runs
        when it finishes or is stopped."""
        port = self.open()
        song = mido.MidiFile(file=io.BytesIO(midi))
        self.stop()
        self._stop = threading.Event()
        self.playing = item
        self._thread = threading.Thread(
            target=self._run, args=(port, song, item, self._stop, on_end), name="midi-play", daemon=True
        )
        self._thread.start()
        return float(song.length)

    def _run(
        self,
        port: BaseOutput,
        song: mido.MidiFile,
        item: str,
        stop: threading.Event,
        on_end: Callable[[str, bool], None] | None,
    ) -> None:
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
                port.send(msg)
                if msg.type == "note_on" and msg.velocity > 0:
                    sounding.add((msg.channel, msg.note))
                elif msg.type in ("note_on", "note_off"):
                    sounding.discard((msg.channel, msg.note))
        except Exception:
            log.exception("MIDI playback of %s failed", item)
        finally:
            self._ended(port, sounding, item, stop, on_end)

    def loop(
        self, newest: Callable[[], dict[str, Any] | None], name: str, on_end: Callable[[str, bool], None] | None = None
    ) -> float:
        """Loop a live session's music until stopped or until `newest()`, which gives its newest
        frame (`notes`, `bars`, `tempo` and the MIDI `data`, whose program changes are sent
        first), gives None (the session closed). Returns the first bar's length in seconds."""
        port = self.open()
        first = newest()
        if first is None:
            raise ValueError(f"live session {name} has no frame to loop")
        self.stop()
        self._stop = threading.Event()
        self.playing = name
        self._thread = threading.Thread(
            target=self._loop, args=(port, newest, first, name, self._stop, on_end), name="midi-loop", daemon=True
        )
        self._thread.start()
        return 4 * 60.0 / float(first["tempo"])

    def _loop(
        self,
        port: BaseOutput,
        newest: Callable[[], dict[str, Any] | None],
        first: dict[str, Any],
        name: str,
        stop: threading.Event,
        on_end: Callable[[str, bool], None] | None,
    ) -> None:
        sounding: dict[tuple[int, int], float] = {}  # (channel, pitch) -> when its note-off is due
        try:
            for msg in mido.MidiFile(file=io.BytesIO(first["data"])):
                if msg.type == "program_change":
                    port.send(msg)
            bar_start, bar = time.perf_counter() + 0.02, 0
            while not stop.is_set():
                frame = newest()
                if frame is None:  # its session closed
                    break
                beat = 60.0 / float(frame["tempo"])
                bar_end = bar_start + 4 * beat
                if not _play_bar(port, frame, bar % int(frame["bars"]), bar_start, beat, sounding, stop):
                    break
                if not _release(port, sounding, bar_end, stop) or not _wait_until(bar_end, stop):
                    break
                bar_start, bar = bar_end, bar + 1
        except Exception:
            log.exception("the live MIDI loop %s failed", name)
        finally:
            self._ended(port, sounding, name, stop, on_end)

    def _ended(
        self,
        port: BaseOutput,
        sounding: Iterable[tuple[int, int]],
        name: str,
        stop: threading.Event,
        on_end: Callable[[str, bool], None] | None,
    ) -> None:
        """A playback is over: what still sounds gets its note-off, and `on_end` hears of it."""
        for channel, note in sorted(sounding):
            port.send(mido.Message("note_off", channel=channel, note=note, velocity=0))
        if self.playing == name:
            self.playing = None
        if on_end is not None:
            on_end(name, stop.is_set())

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


def _wait_until(moment: float, stop: threading.Event) -> bool:
    """Sleep until `moment` (perf_counter time); False when stopped first."""
    delay = moment - time.perf_counter()
    return not (stop.wait(delay) if delay > 0 else stop.is_set())


def _release(port: BaseOutput, sounding: dict[tuple[int, int], float], until: float, stop: threading.Event) -> bool:
    """Send, each at its time, the note-offs due before `until`; False when stopped first."""
    for key, due in sorted(sounding.items(), key=lambda kv: kv[1]):
        if due > until:
            break
        if not _wait_until(due, stop):
            return False
        port.send(mido.Message("note_off", channel=key[0], note=key[1], velocity=0))
        del sounding[key]
    return True


def _play_bar(
    port: BaseOutput,
    frame: dict[str, Any],
    position: int,
    start: float,
    beat: float,
    sounding: dict[tuple[int, int], float],
    stop: threading.Event,
) -> bool:
    """Bar `position` of `frame`'s notes, from `start`: each note-on at its time, the note-offs due
    before it first; False when stopped first."""
    first_beat = 4 * position
    notes = sorted(
        (start + (s - first_beat) * beat, track, pitch, velocity, length)
        for track, pitch, velocity, s, length in frame["notes"]
        if first_beat <= s < first_beat + 4
    )
    for on, channel, pitch, velocity, length in notes:
        if not _release(port, sounding, on, stop) or not _wait_until(on, stop):
            return False
        if (channel, pitch) in sounding:  # the same key again before its end: end it first
            port.send(mido.Message("note_off", channel=channel, note=pitch, velocity=0))
        port.send(mido.Message("note_on", channel=channel, note=pitch, velocity=velocity))
        sounding[channel, pitch] = on + length * beat
    return True
