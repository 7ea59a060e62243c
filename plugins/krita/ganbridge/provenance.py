"""What the docker's provenance view shows: the shared provenance lines (ganbridge_recipes) cut
to the docker's width, and in its tooltip in full. Plain Python, no Qt and no bridge."""

from __future__ import annotations

import textwrap
from typing import Any

from . import ganbridge_recipes as gr

LINE_CHARS = 64  # a docker is narrow: longer facts (a model card's source list) are cut here
TIP_CHARS = 100  # Qt does not wrap a plain-text tooltip: a long licence would be one huge line
NOTHING = "Provenance: select a result thumbnail or a generated layer"
WAITING = gr.WAITING


def describe(recipe: dict[str, Any] | None) -> tuple[str, str]:
    """(label text, tooltip) for a layer's or thumbnail's recipe; None: nothing selected."""
    if not recipe:
        return NOTHING, ""
    text = "\n".join(gr.shorten(line, LINE_CHARS) for line in gr.provenance(recipe, short=True))
    full = gr.provenance(recipe, short=False)
    tip = "\n".join(textwrap.fill(line, TIP_CHARS, break_long_words=True) for line in full)
    return text, tip
