"""History thumbnails: a preview icon per result, for the panel's history.

A result's icon is made on the worker thread from the pixels it decoded anyway, and set on the UI
thread in the slice that adds the result. After a .blend is opened again, each result's PNG
(packed, or its file beside the .blend) is read, one per tick, and its icon made on the worker the
same way, so a file with many results never holds the interface. Icons live in a `bpy.utils.previews` collection: they are not saved in
the .blend and are made again from it.
"""

from __future__ import annotations

from functools import partial

import bpy
import bpy.utils.previews

from . import png
from .ganbridge_work import Work, WorkQueue
from .materials import THUMBNAIL, original_png

SIZE = THUMBNAIL  # pixels on the longer side; Blender draws it at the panel's icon scale

_icons: bpy.utils.previews.ImagePreviewCollection | None = None
_queued: set[str] = set()  # items whose icon is being made
_unreadable: set[str] = set()  # items whose PNG this decoder does not read: a placeholder, not retried


def _collection() -> bpy.utils.previews.ImagePreviewCollection:
    global _icons
    if _icons is None:
        _icons = bpy.utils.previews.new()
    return _icons


def has(item: str) -> bool:
    return item in _collection()


def icon(item: str) -> int:
    """The result's icon id (0 while it has none, and always in background mode, which draws no
    icons: `has` says whether its thumbnail is made)."""
    icons = _collection()
    return icons[item].icon_id if item in icons else 0


def store(item: str, small: png.Pixels | None) -> None:
    if small is None:
        _unreadable.add(item)
        return
    icons = _collection()
    preview = icons[item] if item in icons else icons.new(item)
    preview.image_size = (small.width, small.height)
    preview.image_pixels_float.foreach_set(small.rgba)


def make(png_bytes: bytes) -> png.Pixels | None:
    """On the worker: a thumbnail from a PNG (None for one this decoder does not read)."""
    pixels = png.decode(png_bytes)
    return png.thumbnail(pixels, SIZE) if pixels is not None else None


def rebuild(entries: list[dict], queue: WorkQueue) -> int:
    """Queue an icon for every result in `entries` that has none (and is not queued already) and
    whose colour image is in this file; returns how many. Each reads its image's PNG in a slice of
    its own."""
    skip = _queued | _unreadable
    todo = [e for e in entries if e.get("images") and e["item"] not in skip and not has(e["item"])]
    for entry in todo:
        _queued.add(entry["item"])
        queue.add(Work(apply=partial(_read_png, entry["item"], entry["images"][0], queue)))
    return len(todo)


def _read_png(item: str, image_name: str, queue: WorkQueue, _prepared: None) -> None:
    data = None if has(item) else original_png(bpy.data.images.get(image_name))
    if data is None:
        _queued.discard(item)
        return  # made meanwhile, or deleted since, or not a result's image
    queue.add(Work(apply=partial(_store_made, item), prepare=partial(make, data)))


def _store_made(item: str, small: png.Pixels | None) -> None:
    _queued.discard(item)
    store(item, small)


def free() -> None:
    global _icons
    _queued.clear()
    _unreadable.clear()
    if _icons is not None:
        bpy.utils.previews.remove(_icons)
        _icons = None
