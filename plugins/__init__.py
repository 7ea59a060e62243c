"""The plugin sources, installed as package data of `ganbridge.plugins`.

`ganbridge plugin build HOST` packs them for Blender and Krita; `daw/` is the Pure Data patch and the
OSC map. Nothing here is imported by the bridge: each plugin runs inside its host's own Python.
"""
