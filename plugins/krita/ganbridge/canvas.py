"""Results into Krita documents: new paint layers, selection fills, recipes in the document.

Every payload is decoded and checked before the document is touched; a layer that fails part way
is removed again, so a document is never left half-modified. Adding the layer is Krita's undo step.
A texture with maps goes in as a group of the result's name: its colour layer at the bottom (the
result's own layer, which keeps the recipe) and one hidden paint layer per map above it, in the
bridge's order from the top, so making a map visible shows it over the colour.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from krita import Krita

from . import ganbridge_client as gc
from . import ganbridge_work as gw
from . import pixels, recipes
from .qt import (
    ALPHA8,
    ARGB32,
    DESTINATION_IN,
    KEEP_ASPECT,
    SMOOTH,
    QAbstractItemView,
    QByteArray,
    QDockWidget,
    QImage,
    QPainter,
    is_deleted,
)

BAND_BYTES = 1 << 20  # pixels written per slice: about 1-3 ms of Krita's time for a megabyte


class CanvasError(Exception):
    """A result that cannot go into the document; the message is for the painter."""


@dataclass
class Region:
    """Where a fill goes: a rectangle of the canvas, and the selection it came from (if any)."""

    x: int
    y: int
    width: int
    height: int
    mask: bytes | None = None  # the selection's pixels over the rectangle, or None for the whole canvas


def check_document(doc: Any) -> None:
    if doc is None:
        raise CanvasError("no document is open: create or open one first")
    if doc.colorModel() != "RGBA" or doc.colorDepth() != "U8":
        raise CanvasError(
            f"this document is {doc.colorModel()} {doc.colorDepth()}; GAN Bridge writes 8-bit RGB layers: "
            "convert it with Image > Convert Image Color Space (RGB/Alpha, 8-bit integer/channel)"
        )


def decode_png(payload: bytes | str, width: int | None = None, height: int | None = None) -> QImage:
    """A PNG payload (bytes, or base64) -> a QImage in Krita's B, G, R, A byte order, checked.
    Safe off the GUI thread."""
    try:
        data = gc.payload(payload)
    except ValueError:
        raise CanvasError("the image from the bridge is missing or not valid base64") from None
    image = QImage()
    if not data.startswith(b"\x89PNG") or not image.loadFromData(data, "PNG"):
        raise CanvasError("the image from the bridge is not a PNG Krita can read")
    if (width and image.width() != width) or (height and image.height() != height):
        raise CanvasError(f"the image is {image.width()}x{image.height()}, the bridge announced {width}x{height}")
    return image.convertToFormat(ARGB32)


def image_bytes(image: QImage) -> bytes:
    """The pixels of a 4-byte-a-pixel QImage, rows packed (Qt pads rows to 4 bytes; these need none)."""
    w, h, stride = image.width(), image.height(), image.bytesPerLine()
    bits = image.constBits()
    bits.setsize(stride * h)
    raw = bytes(bits)
    return raw if stride == w * 4 else b"".join(raw[y * stride : y * stride + w * 4] for y in range(h))


def mask_alpha(bgra: bytes, mask: bytes, width: int, height: int) -> bytes:
    """Each pixel's alpha times the selection mask (one byte a pixel). Opaque pixels take the mask
    as their alpha (plain bytes, exact); others are multiplied by Qt's compositing, not per pixel
    in Python (which took 0.3-0.7 s for 2048x1536)."""
    if pixels.is_opaque(bgra):
        return pixels.mask_as_alpha(bgra, mask)
    if len(mask) != width * height:
        raise ValueError(f"a mask of {len(mask)} pixels does not fit {width}x{height}")
    out = QImage(bgra, width, height, width * 4, ARGB32).copy()  # a copy: it owns its pixels
    painter = QPainter(out)
    painter.setCompositionMode(DESTINATION_IN)
    painter.drawImage(0, 0, QImage(mask, width, height, width, ALPHA8))
    painter.end()
    return image_bytes(out)


Bands = list[tuple[int, bytes]]  # (first row, B, G, R, A bytes of whole rows), top to bottom


@dataclass
class Prepared:
    """A result made ready on the worker thread: where it goes, its pixels in bands, a thumbnail,
    and a texture's maps (name -> bands, placed as its colour is), in the bridge's order."""

    x: int
    y: int
    width: int
    height: int
    bands: Bands
    thumbnail: QImage
    maps: dict[str, Bands] = field(default_factory=dict)


def _placed(bgra: bytes, width: int, height: int, region: Region | None) -> bytes:
    """A decoded image's pixels as they go into its layer: as they are, or tiled (and masked) over
    a fill's region. The colour and each map go through here alike, so they line up."""
    if region is None:
        return bgra
    data = pixels.tile(bgra, width, height, region.width, region.height, region.x, region.y)
    if region.mask is not None:  # only what is selected, with its soft edges
        data = mask_alpha(data, region.mask, region.width, region.height)
    return data


def _bands(data: bytes, width: int, height: int) -> Bands:
    rows = max(1, BAND_BYTES // (width * 4))
    return [(top, data[top * width * 4 : (top + rows) * width * 4]) for top in range(0, height, rows)]


def map_payloads(item: dict) -> list[tuple[str, Any]]:
    """(name, base64 PNG) of each map of a result: a `result` item's maps are {format, mime, file,
    data}, an `item` reply's the base64 alone."""
    maps = item.get("maps") or {}
    return [(str(name), m.get("data") if isinstance(m, dict) else m) for name, m in maps.items()]


def prepare(item: dict, region: Region | None, thumb: int, maps: bool = True) -> Prepared:
    """Decode (and for a fill tile and mask) a result and, with `maps`, its maps. Runs on the
    worker: no Krita call here."""
    image = decode_png(item.get("data", ""), item.get("width"), item.get("height"))
    thumbnail = image.scaled(thumb, thumb, KEEP_ASPECT, SMOOTH)
    width, height = image.width(), image.height()
    x, y, w, h = (region.x, region.y, region.width, region.height) if region is not None else (0, 0, width, height)
    layers: dict[str, Bands] = {}
    for name, b64 in map_payloads(item) if maps else []:
        try:
            bgra = image_bytes(decode_png(b64, width, height))
        except CanvasError as e:
            raise CanvasError(f"its {name} map: {e}") from None
        layers[name] = _bands(_placed(bgra, width, height, region), w, h)
    data = _placed(image_bytes(image), width, height, region)
    return Prepared(x, y, w, h, _bands(data, w, h), thumbnail, layers)


def fill_region(doc: Any) -> Region:
    """The selection's bounding box (and the selection), or the whole canvas when nothing is selected."""
    sel = doc.selection()
    if sel is not None and sel.width() > 0 and sel.height() > 0:
        x, y, w, h = sel.x(), sel.y(), sel.width(), sel.height()
        return Region(x, y, w, h, bytes(sel.pixelData(x, y, w, h)))  # read now: it is the GUI thread
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
    """(parent, sibling to go above): above the active layer, in its group; above a result's group
    of maps when the active layer is in one (a result never goes in among another's maps)."""
    active = doc.activeNode()
    if active is None or active.parentNode() is None:
        return doc.rootNode(), None
    parent = active.parentNode()
    if is_maps_group(doc, parent) and parent.parentNode() is not None:
        return parent.parentNode(), parent
    return parent, active


def is_maps_group(doc: Any, node: Any) -> bool:
    """Whether `node` is the group insert_layer made for a result with maps."""
    return bool(_maps_recipe(load_recipes(doc), node))


def _maps_recipe(stored: dict[str, dict], node: Any) -> dict:
    """The recipe of the result whose group of maps `node` is (its colour layer's recipe names the
    maps), or {}. Not the document's root: a colour layer moved to the top level is on its own."""
    if node.type() != "grouplayer" or node.parentNode() is None:
        return {}
    recipes_ = (stored.get(child.uniqueId().toString(), {}) for child in node.childNodes())
    return next((r for r in recipes_ if r.get("maps")), {})


COLOUR = "colour"  # the colour layer's name in a result's group of maps: "<result> colour"


def insert_layer(doc: Any, prepared: Prepared, name: str, recipe: dict) -> Iterator[str | None]:
    """Put a prepared result into `doc` as a new paint layer (a group with its maps, for a texture
    that has them), made active, a band of rows per slice (each `yield` lets the GUI run). The
    layers are filled before they join the document, which they do in the last slice, as one undo
    step; stopped part way (an error, the document closed) nothing has changed. Returns the id of
    the layer with the recipe (`layer_id = yield from insert_layer(...)`): a group's colour layer.

    Adding a layer is Krita's own work (its layer list and canvas take it in): 6-150 ms measured
    under Xvfb whatever the layer's size, empty layers too, so that slice gets a tick of its own.
    Filled then added, Krita composites the new layer on its own threads; writing pixels into a
    layer already added needs Document.refreshProjection, a synchronous refresh of the whole image
    that spins a nested event loop. A group is added whole for the same reasons: adding its
    layers one by one to the document would be an undo step each."""
    check_document(doc)
    node = doc.createNode(f"{name} {COLOUR}" if prepared.maps else name, "paintlayer")
    yield from _fill(doc, node, prepared, prepared.bands)
    top = node
    if prepared.maps:
        top = yield from _maps_group(doc, node, prepared, name)
    yield gw.NEXT_TICK
    check_document(doc)
    parent, above = _insertion_point(doc)
    parent.addChildNode(top, above)
    try:
        layer_id = node.uniqueId().toString()
        save_recipe(doc, layer_id, {**recipe, "maps": list(prepared.maps)} if prepared.maps else recipe)
    except Exception:
        top.remove()
        raise
    # The group, for a result with maps: Krita's GUI makes the node just added active anyway, and
    # the group stands for its result as its colour layer does (layer_recipe).
    doc.setActiveNode(top)
    return layer_id


def _maps_group(doc: Any, colour: Any, prepared: Prepared, name: str) -> Iterator[None]:
    """The group of a result with maps, not yet in `doc`: its colour layer, then a hidden layer per
    map above it (the first map at the top), each filled a band per slice. Returns the group.

    Its layers go in with setChildNodes, not addChildNode: in Krita 5.1 each addChildNode is an
    undo step of its own, also into a group not yet in a document. The group passes through (it
    only holds the layers together, so the colour blends with what is under it as a lone layer
    does); that is also what makes Krita composite it when it is added: a normal group added with
    its layers shows nothing until the whole image is refreshed (Krita marks only the group dirty,
    and recomposites a group's layers only on a full refresh)."""
    layers = [colour]
    for map_name, bands in reversed(prepared.maps.items()):
        layer = doc.createNode(f"{name} {map_name}", "paintlayer")
        layer.setVisible(False)  # the colour is what the canvas shows
        yield from _fill(doc, layer, prepared, bands)
        layers.append(layer)
    group = doc.createGroupLayer(name)
    group.setChildNodes(layers)  # bottom to top
    group.setPassThroughMode(True)
    return group


def _fill(doc: Any, node: Any, prepared: Prepared, bands: Bands) -> Iterator[None]:
    """Bands into a layer not yet in `doc`, one per slice."""
    for top, band in bands:
        yield
        if doc not in Krita.instance().documents():
            raise CanvasError("its document was closed")
        node.setPixelData(band, prepared.x, prepared.y + top, prepared.width, len(band) // (prepared.width * 4))


# --- a live session's preview layer: added once, then new pixels written into it in place -----------

REPAINT_ACTION = "toggle_layer_visibility"
LAYERS_DOCKER, LAYERS_VIEW = "KisLayerBox", "listLayers"  # Krita's Layers docker and its layer list
LAYER = "layer"  # repaint: Krita recomposites the layer's area on its own threads
IMAGE = "image"  # repaint: the whole image recomposited at once, on the GUI thread


def create_preview(doc: Any, prepared: Prepared, name: str, alive: Callable[[], bool]) -> Iterator[str | None]:
    """A paint layer holding a live session's first frame, added above the active layer and made
    active. Filled before it joins the document (as insert_layer does), so adding it is the one
    undo step a live session makes. `alive()` is asked before the add: a session stopped
    meanwhile adds nothing. Returns the layer (`node = yield from create_preview(...)`) or None."""
    check_document(doc)
    node = doc.createNode(name, "paintlayer")
    write_pixels(node, prepared)
    yield gw.NEXT_TICK  # adding a layer is one long host call: a tick of its own
    if not alive() or doc not in Krita.instance().documents():
        return None
    check_document(doc)
    parent, above = _insertion_point(doc)
    parent.addChildNode(node, above)
    doc.setActiveNode(node)
    return node


def write_pixels(node: Any, prepared: Prepared) -> None:
    """Prepared pixels into a layer. On a layer already in a document this writes its pixels in
    place (Node.setPixelData: no undo step), but nothing is redrawn: see repaint."""
    for top, band in prepared.bands:
        node.setPixelData(band, prepared.x, prepared.y + top, prepared.width, len(band) // (prepared.width * 4))


def is_active(doc: Any, node: Any) -> bool:
    active = doc.activeNode()
    return active is not None and active.uniqueId() == node.uniqueId()


def repaint(doc: Any, node: Any) -> str:
    """Have Krita show the new pixels of `node` (a layer of `doc`, written with write_pixels)
    without an undo step. Returns how: LAYER, IMAGE, or "" (nothing to show: `doc` is not the
    active document, or the layer is hidden).

    Krita 5.1's scripting API has no "this layer changed" call. Node.setVisible, setOpacity,
    setLocked and the like change the property without marking anything dirty; setBlendingMode
    (a common trick) runs a stroke, waits for it and leaves an undo step each time;
    Document.refreshProjection recomposites the whole image synchronously on the GUI thread
    (1.5 ms for a 512x512 document, 200-300 ms for a 2048x1536 one of seven layers, measured
    here). Krita's own action "toggle layer visibility" marks the layer dirty and Krita
    recomposites just its area on its own threads; triggered twice, the second change cancels the
    first in the undo history (KisNodePropertyListCommand annihilates with its inverse), so no
    undo step is left (LAYER): 3-7 ms of GUI time for both on a small document, 19-60 ms on the
    2048x1536 one (Krita's dockers redrawing), and the canvas shows the new pixels 15-30 ms later.
    It acts on the layers selected in the Layers docker, so it is used
    only when that selection is exactly `node` (the active layer); otherwise (the docker closed,
    more layers selected) the whole image is refreshed instead (IMAGE)."""
    app = Krita.instance()
    if app.activeDocument() != doc or not node.visible():
        return ""
    action = app.action(REPAINT_ACTION)
    if action is not None and is_active(doc, node) and _selected_in_layers_docker() == [node.name()]:
        action.trigger()
        if not node.visible():  # it reached the layer: show it again, the pair leaves no undo step
            action.trigger()
            return LAYER
    doc.refreshProjection()
    return IMAGE


_layers_view: dict[str, Any] = {}  # Krita's layer list in the active window, found once per window


def _selected_in_layers_docker() -> list[str] | None:
    """The names of the layers selected in the active window's Layers docker (what Krita's layer
    actions act on), or None when it has none to ask."""
    window = Krita.instance().activeWindow()
    if window is None:
        return None
    qwindow = window.qwindow()
    view = _layers_view.get("view")
    if _layers_view.get("window") is not qwindow or view is None or is_deleted(view):
        _layers_view.clear()
        _layers_view["window"] = qwindow
        docker = qwindow.findChild(QDockWidget, LAYERS_DOCKER)
        view = _layers_view["view"] = docker.findChild(QAbstractItemView, LAYERS_VIEW) if docker else None
    if view is None or view.selectionModel() is None:
        return None
    return [index.data() for index in view.selectionModel().selectedRows()]


def remove_preview(doc: Any, node: Any) -> bool:
    """Take a preview layer out of its document (one undo step), if both are still there."""
    if doc not in Krita.instance().documents() or find_layer(doc, node.uniqueId().toString()) is None:
        return False
    node.remove()
    return True


def add_result(doc: Any, item: dict, recipe: dict, region: Region | None = None) -> str:
    """All of insert_layer at once, then the whole image refreshed (for scripts, which may have no
    view to composite the layer in; the docker slices insert_layer over GUI ticks)."""
    check_document(doc)
    name = recipes.layer_name(recipe, fill=region is not None)
    slices = insert_layer(doc, prepare(item, region, 1), name, recipe)
    while True:
        try:
            next(slices)
        except StopIteration as done:
            doc.refreshProjection()
            return done.value


def layer_recipe(doc: Any, node: Any) -> dict:
    """The recipe of the result a layer is (read from the .kra too), or {}: a generated layer's
    own, and for a result's group of maps, or a map layer in it, its colour layer's."""
    if doc is None or node is None:
        return {}
    stored = load_recipes(doc)
    own = stored.get(node.uniqueId().toString())
    if own is not None:
        return own
    group = node if node.type() == "grouplayer" else node.parentNode()
    return _maps_recipe(stored, group) if group is not None else {}


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
