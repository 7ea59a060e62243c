"""Results into Krita documents: new paint layers, selection fills, recipes in the document.

Every payload is decoded and checked before the document is touched; a layer that fails part way
is removed again, so a document is never left half-modified. Adding the layer is Krita's undo step.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass
from typing import Any

from krita import Krita

from . import pixels, recipes
from .qt import ARGB32, KEEP_ASPECT, RGBA8888, SMOOTH, QByteArray, QImage


class CanvasError(Exception):
    """A result that cannot go into the document; the message is for the painter."""


@dataclass
class Region:
    """Where a fill goes: a rectangle of the canvas, and the selection it came from (if any)."""

    x: int
    y: int
    width: int
    height: int
    selection: Any = None  # a krita.Selection copy, or None for the whole canvas


def check_document(doc: Any) -> None:
    if doc is None:
        raise CanvasError("no document is open: create or open one first")
    if doc.colorModel() != "RGBA" or doc.colorDepth() != "U8":
        raise CanvasError(
            f"this document is {doc.colorModel()} {doc.colorDepth()}; GAN Bridge writes 8-bit RGB layers: "
            "convert it with Image > Convert Image Color Space (RGB/Alpha, 8-bit integer/channel)"
        )


def decode_png(b64: str, width: int | None = None, height: int | None = None) -> tuple[int, int, bytes]:
    """base64 PNG -> (width, height, BGRA bytes), checked."""
    try:
        data = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise CanvasError("the image from the bridge is not valid base64") from None
    image = QImage()
    if not data.startswith(b"\x89PNG") or not image.loadFromData(data, "PNG"):
        raise CanvasError("the image from the bridge is not a PNG Krita can read")
    if (width and image.width() != width) or (height and image.height() != height):
        raise CanvasError(f"the image is {image.width()}x{image.height()}, the bridge announced {width}x{height}")
    image = image.convertToFormat(RGBA8888)
    w, h = image.width(), image.height()
    bits = image.constBits()
    bits.setsize(image.bytesPerLine() * h)
    raw = bytes(bits)
    stride = image.bytesPerLine()
    rgba = raw if stride == w * 4 else b"".join(raw[y * stride : y * stride + w * 4] for y in range(h))
    return w, h, pixels.rgba_to_bgra(rgba)


def fill_region(doc: Any) -> Region:
    """The selection's bounding box (and the selection), or the whole canvas when nothing is selected."""
    sel = doc.selection()
    if sel is not None and sel.width() > 0 and sel.height() > 0:
        return Region(sel.x(), sel.y(), sel.width(), sel.height(), sel.duplicate())
    return Region(0, 0, doc.width(), doc.height(), None)


def _annotation(doc: Any) -> bytes | None:
    if recipes.ANNOTATION not in doc.annotationTypes():
        return None
    return bytes(doc.annotation(recipes.ANNOTATION))


def load_recipes(doc: Any) -> dict[str, dict]:
    return recipes.decode(_annotation(doc))


def _store(doc: Any, layers: dict[str, dict], session: str | None) -> None:
    doc.setAnnotation(recipes.ANNOTATION, recipes.DESCRIPTION, QByteArray(recipes.encode(layers, session)))


def document_session(doc: Any) -> str:
    """The document's rating session, kept in its annotation (saved in the .kra): made the first
    time the document asks for one, the same after a save, a reload or a restart of Krita."""
    data = _annotation(doc)
    session = recipes.decode_session(data)
    if session is None:
        session = uuid.uuid4().hex
        _store(doc, recipes.decode(data), session)
    return session


def save_recipe(doc: Any, layer_id: str, recipe: dict) -> None:
    data = _annotation(doc)
    stored = recipes.decode(data)
    stored[layer_id] = recipe
    _store(doc, stored, recipes.decode_session(data))


def update_recipes(doc: Any, item: str, fields: dict) -> bool:
    """Merge the bridge's full recipe into every layer made from `item`."""
    data = _annotation(doc)
    stored = recipes.decode(data)
    hits = [k for k, r in stored.items() if r.get("item") == item]
    for k in hits:
        stored[k].update(fields)
    if hits:
        _store(doc, stored, recipes.decode_session(data))
    return bool(hits)


def _insertion_point(doc: Any) -> tuple[Any, Any]:
    """(parent, sibling to go above): above the active layer, in its group."""
    active = doc.activeNode()
    if active is None or active.parentNode() is None:
        return doc.rootNode(), None
    return active.parentNode(), active


def add_result(doc: Any, item: dict, recipe: dict, region: Region | None = None) -> str:
    """A new paint layer holding the result (or tiled over `region`); returns the layer's id."""
    check_document(doc)
    width, height, bgra = decode_png(item.get("data", ""), item.get("width"), item.get("height"))
    if region is not None:
        data = pixels.tile(bgra, width, height, region.width, region.height, region.x, region.y)
        x, y, w, h = region.x, region.y, region.width, region.height
        if region.selection is not None:  # only what is selected, with its soft edges
            data = pixels.apply_mask(data, bytes(region.selection.pixelData(x, y, w, h)))
    else:
        data, x, y, w, h = bgra, 0, 0, width, height
    name = recipes.layer_name(recipe) + (" fill" if region is not None else "")
    parent, above = _insertion_point(doc)
    node = doc.createNode(name, "paintlayer")
    try:
        parent.addChildNode(node, above)
        node.setPixelData(data, x, y, w, h)
        layer_id = node.uniqueId().toString()
        save_recipe(doc, layer_id, recipe)
    except Exception:
        node.remove()
        raise
    doc.setActiveNode(node)
    doc.refreshProjection()
    return layer_id


def layer_recipe(doc: Any, node: Any) -> dict:
    """The recipe a generated layer keeps in the document (read from the .kra too), or {}."""
    if doc is None or node is None:
        return {}
    return load_recipes(doc).get(node.uniqueId().toString(), {})


def layer_item(doc: Any, node: Any) -> str:
    """The bridge item a layer was made from, or ''."""
    return layer_recipe(doc, node).get("item", "")


def item_recipe(doc: Any, item: str) -> dict:
    """The recipe of a layer of `doc` made from `item`, or {}."""
    if doc is None:
        return {}
    return next((r for r in load_recipes(doc).values() if r.get("item") == item), {})


def find_layer(doc: Any, layer_id: str) -> Any:
    """The layer (in any group) whose unique id is `layer_id`, or None (deleted since)."""
    todo = list(doc.topLevelNodes())
    while todo:
        node = todo.pop()
        if node.uniqueId().toString() == layer_id:
            return node
        todo += node.childNodes()
    return None


def layer_thumbnail(node: Any, size: int) -> QImage | None:
    """The layer's pixels (its own extent, not the canvas's) scaled to fit size x size, aspect kept."""
    bounds = node.bounds()
    w, h = bounds.width(), bounds.height()
    if w <= 0 or h <= 0:
        return None
    data = bytes(node.pixelData(bounds.x(), bounds.y(), w, h))
    if len(data) != w * h * 4:  # not an 8-bit RGBA layer
        return None
    return QImage(data, w, h, w * 4, ARGB32).scaled(size, size, KEEP_ASPECT, SMOOTH)  # a copy: `data` may go


def active_document() -> Any:
    return Krita.instance().activeDocument()
