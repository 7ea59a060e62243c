"""Audio previews: a MIDI file rendered to WAV by FluidSynth with a General MIDI soundfont."""

from __future__ import annotations

import io
import shutil
import subprocess
import tempfile
import wave
from pathlib import Path

import numpy as np

from ganbridge.generators.base import Unavailable

SOUNDFONTS = (
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "/usr/share/sounds/sf2/default-GM.sf2",
    "/usr/share/soundfonts/FluidR3_GM.sf2",
    "/usr/share/soundfonts/default.sf2",
)
SAMPLE_RATE = 44100
PEAK_DBFS = -1.0  # previews are scaled so their loudest sample is here (FluidSynth's own: about -19)


class AudioUnavailable(Unavailable):
    """FluidSynth or a soundfont is missing; the message says what to install."""


def find_soundfont(configured: Path | None = None) -> Path:
    if configured is not None:
        if not Path(configured).is_file():
            raise AudioUnavailable(f"the configured soundfont {configured} does not exist")
        return Path(configured)
    for candidate in SOUNDFONTS:
        if Path(candidate).is_file():
            return Path(candidate)
    raise AudioUnavailable(
        "WAV output needs a General MIDI soundfont: install Debian's fluid-soundfont-gm "
        "(or set the soundfont setting, GANBRIDGE_SOUNDFONT, to an .sf2 file)"
    )


def find_fluidsynth() -> str:
    exe = shutil.which("fluidsynth")
    if exe is None:
        raise AudioUnavailable("WAV output needs FluidSynth: install Debian's fluidsynth (apt install fluidsynth)")
    return exe


def render_wav(midi: bytes, soundfont: Path | None = None, timeout: float = 60.0) -> bytes:
    """MIDI file bytes -> 16-bit stereo WAV bytes at 44.1 kHz."""
    exe, font = find_fluidsynth(), find_soundfont(soundfont)
    with tempfile.TemporaryDirectory(prefix="ganbridge-wav-") as tmp:
        mid, wav = Path(tmp) / "in.mid", Path(tmp) / "out.wav"
        mid.write_bytes(midi)
        cmd = [exe, "-ni", "-q", "-a", "file", "-F", str(wav), "-T", "wav", "-r", str(SAMPLE_RATE), str(font), str(mid)]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0 or not wav.is_file():
            raise RuntimeError(f"FluidSynth failed ({done.returncode}): {done.stderr.strip()[-300:]}")
        return normalized(wav.read_bytes())


def normalized(wav_bytes: bytes, peak_dbfs: float = PEAK_DBFS) -> bytes:
    """16-bit WAV bytes scaled so the loudest sample peaks at `peak_dbfs`; silence stays silent.
    FluidSynth leaves headroom for a full orchestra, so four voices alone come out quiet."""
    with wave.open(io.BytesIO(wav_bytes)) as src:
        params = src.getparams()
        frames = src.readframes(params.nframes)
    if params.sampwidth != 2:
        return wav_bytes
    samples = np.frombuffer(frames, "<i2").astype(np.float64)
    peak = float(np.abs(samples).max()) if samples.size else 0.0
    if peak == 0:
        return wav_bytes
    gain = 32767 * 10 ** (peak_dbfs / 20) / peak
    out = io.BytesIO()
    with wave.open(out, "wb") as dst:
        dst.setparams(params)
        dst.writeframes(np.round(samples * gain).astype("<i2").tobytes())
    return out.getvalue()
