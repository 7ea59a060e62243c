"""GAN Bridge for Blender: generate, vary, rate and steer seamless textures from `ganbridge serve`.

A thin client: no torch, no model. Generators and their parameters come from the bridge; results
become packed images and materials. The network runs in background threads (`ganbridge_client`);
`connection.drain()` applies what arrives on Blender's main thread.
"""

from __future__ import annotations

import bpy
from bpy.app.handlers import persistent

from . import connection, history, live, materials, operators, params, thumbnails, ui
from .connection import drain  # noqa: F401  (tests and scripts call it: timers do not run in background mode)


class GANBRIDGE_AddonPreferences(bpy.types.AddonPreferences):
    bl_idname = __package__

    url: bpy.props.StringProperty(
        name="Bridge URL",
        default="ws://127.0.0.1:8765/",
        description="Where `ganbridge serve` listens. Other computers need Blender's online access and a token",
    )
    token: bpy.props.StringProperty(name="Token", subtype="PASSWORD", description="Only if the bridge asks for one")

    def draw(self, context):
        self.layout.prop(self, "url")
        self.layout.prop(self, "token")


class GANBRIDGE_PG_settings(bpy.types.PropertyGroup):
    generator: bpy.props.StringProperty(name="Generator")
    count: bpy.props.IntProperty(name="Count", default=1, min=1, max=16, description="Results per click")
    strength: bpy.props.FloatProperty(
        name="Strength", default=0.3, min=0.0, max=1.0, description="How far variations stray"
    )
    steps: bpy.props.IntProperty(
        name="Steps", default=6, min=2, max=16, description="Results in a blend, ends included"
    )
    explore: bpy.props.FloatProperty(
        name="Explore",
        default=0.25,
        min=0.0,
        max=1.0,
        description="How far steering looks: 0 small steps from the best, 1 random samples",
    )
    tiling: bpy.props.FloatProperty(
        name="Tiling",
        default=1.0,
        min=0.01,
        soft_max=16.0,
        description="How many times a new result's texture repeats across the surface (its material's Mapping node)",
    )
    image_files: bpy.props.BoolProperty(
        name="Save images as files",
        default=False,
        description="Write each new result's images as PNG files in a 'ganbridge' folder beside the saved .blend "
        "(the bridge's own files, recipe and credentials inside) instead of packing them into it",
    )
    session: bpy.props.StringProperty(name="Session", description="This file's rating session on the bridge")
    history_page: bpy.props.IntProperty(
        name="History page", default=0, min=0, description="Which page of results the history shows, newest first"
    )
    item_a: bpy.props.StringProperty(name="A")
    item_b: bpy.props.StringProperty(name="B")


CLASSES = (GANBRIDGE_AddonPreferences, GANBRIDGE_PG_settings, *live.CLASSES, *operators.CLASSES, *ui.CLASSES)


@persistent
def _restore_images(*_args) -> None:
    materials.restore_images()


@persistent
def _leave_live(*_args) -> None:
    # Another .blend is being opened: its images are not the live session's (nothing to put back).
    live.stop(restore=False)


@persistent
def _rebuild_thumbnails(*_args) -> None:
    if thumbnails.rebuild(history.entries(), connection.WORK):
        connection.ensure_timer()


# A .blend opened, or an undo step: results' images come back holding no pixels of their own.
HANDLERS = (bpy.app.handlers.load_post, bpy.app.handlers.undo_post, bpy.app.handlers.redo_post)


def register() -> None:
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    bpy.types.Scene.ganbridge = bpy.props.PointerProperty(type=GANBRIDGE_PG_settings)
    # The live sliders: on the window manager, so they are not undone and push no undo step.
    bpy.types.WindowManager.ganbridge_live = bpy.props.PointerProperty(type=live.GANBRIDGE_PG_live)
    for handlers in HANDLERS:
        handlers.append(_restore_images)
    bpy.app.handlers.load_post.append(_rebuild_thumbnails)  # the history's icons, for an opened file
    bpy.app.handlers.load_pre.append(_leave_live)


def unregister() -> None:
    for handlers in HANDLERS:
        if _restore_images in handlers:
            handlers.remove(_restore_images)
    if _rebuild_thumbnails in bpy.app.handlers.load_post:
        bpy.app.handlers.load_post.remove(_rebuild_thumbnails)
    if _leave_live in bpy.app.handlers.load_pre:
        bpy.app.handlers.load_pre.remove(_leave_live)
    live.stop(restore=True)
    connection.disconnect()
    thumbnails.free()
    params.unregister_all()
    del bpy.types.Scene.ganbridge
    del bpy.types.WindowManager.ganbridge_live
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
