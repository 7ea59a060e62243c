"""Mood: valence (sad to happy) and arousal (calm to excited), named or given, and what they do to
a piece. Each effect is one line below, documented in docs/generators/music.md and measured by
`ganbridge eval music` (its mood table):

- mode: valence at or above +0.25 asks for major, at or below -0.25 for minor (key=auto only);
- tempo: multiplied by 2 ** (arousal / 2), so from 0.71x (calm) to 1.41x (excited);
- density: plus 0.15 x arousal, so excited pieces have more notes and calm ones fewer;
- register: every voice's range moved by 1.5 x (valence + arousal) semitones, rounded (-3 to +3);
- articulation: each note sounds for 1 - 0.4 x max(arousal, 0) of its length (1: legato; 0.6:
  detached, when most excited).
"""

from __future__ import annotations

from dataclasses import dataclass

# Named moods placed on the valence-arousal plane as Russell's circumplex places them.
MOODS: dict[str, tuple[float, float]] = {
    "none": (0.0, 0.0),
    "calm": (0.4, -0.7),
    "tender": (0.6, -0.3),
    "joyful": (0.8, 0.5),
    "triumphant": (0.6, 0.9),
    "agitated": (-0.5, 0.8),
    "sad": (-0.7, -0.5),
    "solemn": (-0.3, -0.8),
}
MODE_THRESHOLD = 0.25


@dataclass(frozen=True)
class MoodEffect:
    """What a mood does: the mode it asks for (None: leave it), and the changes to tempo, density,
    register and note length."""

    mode: str | None
    tempo_factor: float
    density_change: float
    lift: int  # semitones every voice's range moves
    gate: float  # the share of each note's length that sounds

    def tempo(self, tempo: float) -> float:
        return min(240.0, max(30.0, tempo * self.tempo_factor))

    def density(self, density: float) -> float:
        return min(1.0, max(0.05, density + self.density_change))


def mood_effect(valence: float, arousal: float) -> MoodEffect:
    mode = "major" if valence >= MODE_THRESHOLD else "minor" if valence <= -MODE_THRESHOLD else None
    return MoodEffect(
        mode=mode,
        tempo_factor=2 ** (arousal / 2),
        density_change=0.15 * arousal,
        lift=round(1.5 * (valence + arousal)),
        gate=1.0 - 0.4 * max(arousal, 0.0),
    )
