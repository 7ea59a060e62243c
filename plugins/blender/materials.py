"""Results into Blender data: images and a material per result, all or nothing.

`prepare` runs on a worker thread: base64 and PNG decoding, checked, into the float pixels Blender
takes. The UI thread then makes one image per tick (`result_image`) and the material and plane
(`apply_texture`). Each image holds the decoded pixels and, packed beside them, the bridge's own PNG
file (recipe and credentials inside, for Export and for the next time the .blend opens:
`restore_images`). Everything one result creates is recorded as it is made; if any step fails (a
payload that is not a PNG, a size that does not match), all of it is removed again, so the scene is
never left half-modified.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import struct
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import bpy

from . import ganbridge_client as gc
from . import png as png_decoder
from .files import WriteError, remove_all, write_all

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
THUMBNAIL = 96  # the history icon's longer side (thumbnails.SIZE)
FOLDER = "ganbridge"  # beside the .blend, for Save images as files
FILE_MARK = "ganbridge_file"  # on an image whose PNG is a file beside the .blend, not packed
MARK = "ganbridge_png"  # on every image a result makes: its packed file is the bridge's PNG
PLANE_SIZE = 2.0
ROW_GAP = 0.25
MATERIAL_TYPES = ("MESH", "CURVE", "SURFACE", "META", "FONT")


class ResultError(Exception):
    """A result that cannot be applied; the message is for the artist."""


def decode_png(payload: bytes | str, what: str, width: int | None = None, height: int | None = None) -> bytes:
    """A PNG payload (bytes, or base64) -> PNG bytes, checked (signature and IHDR size) before
    Blender sees them."""
    try:
        data = gc.payload(payload)
    except ValueError:
        raise ResultError(f"the {what} from the bridge is missing or not valid base64") from None
    if not data.startswith(PNG_SIGNATURE) or len(data) < 33 or data[12:16] != b"IHDR":
        raise ResultError(f"the {what} from the bridge is not a PNG image")
    w, h = struct.unpack(">II", data[16:24])
    if (width and w != width) or (height and h != height):
        raise ResultError(f"the {what} is {w}x{h}, but the bridge announced {width}x{height}")
    return data


class Created:
    """Datablocks made for one result, removed again if the result fails part way."""

    def __init__(self) -> None:
        self.images: list[bpy.types.Image] = []
        self.materials: list[bpy.types.Material] = []
        self.objects: list[bpy.types.Object] = []
        self.meshes: list[bpy.types.Mesh] = []
        self.files: list[str] = []  # PNGs written beside the .blend for it

    def rollback(self) -> None:
        remove_all(self.files)
        self.files.clear()
        for collection, blocks in (
            (bpy.data.objects, self.objects),
            (bpy.data.meshes, self.meshes),
            (bpy.data.materials, self.materials),
            (bpy.data.images, self.images),
        ):
            for block in blocks:
                try:
                    collection.remove(block)
                except ReferenceError:  # gone already (another file was opened meanwhile)
                    pass
            blocks.clear()


@contextmanager
def all_or_nothing() -> Iterator[Created]:
    created = Created()
    try:
        yield created
    except BaseException:  # GeneratorExit too: a result dropped part way through its slices
        created.rollback()
        raise


@dataclass
class Prepared:
    """A result's images, decoded on the worker: name ("color" first, then its maps) -> the PNG
    bytes and their pixels (None: a PNG the worker's decoder does not read; Blender decodes it)."""

    images: dict[str, tuple[bytes, png_decoder.Pixels | None]]
    thumbnail: png_decoder.Pixels | None = None  # the history's icon, from the colour pixels
    files: dict[str, str] = field(default_factory=dict)  # name -> the PNG written beside the .blend


def prepare(item: dict[str, Any], folder: str | None = None, label: str = "") -> Prepared:
    """Everything about a result that needs no bpy, for a worker thread. Raises ResultError.
    With a `folder` (Save images as files) each PNG is also written there, under its image name."""
    width, height = item.get("width"), item.get("height")
    files = {"color": decode_png(item.get("data", ""), "image", width, height)}
    for name, m in (item.get("maps") or {}).items():
        files[name] = decode_png(m.get("data", "") if isinstance(m, dict) else "", f"{name} map", width, height)
    try:
        images = {name: (data, png_decoder.decode(data)) for name, data in files.items()}
    except png_decoder.PngError as e:
        raise ResultError(f"the image from the bridge is damaged: {e}") from None
    color = images["color"][1]
    written = write_files(folder, label, str(item.get("item", "")), files) if folder else {}
    return Prepared(images, png_decoder.thumbnail(color, THUMBNAIL) if color is not None else None, written)


def image_folder() -> str | None:
    """Where Save images as files puts a new result's PNGs: `ganbridge/` beside the saved .blend
    (None: the option is off, or the .blend was never saved, so its images are packed)."""
    if not bpy.context.scene.ganbridge.image_files or not bpy.data.filepath:
        return None
    return os.path.join(os.path.dirname(bpy.data.filepath), FOLDER)


def write_files(folder: str, label: str, item: str, files: dict[str, bytes]) -> dict[str, str]:
    """The bridge's PNGs (recipe and credentials inside) as files in `folder`, named after the
    result's images, all or none (files.write_all). Returns name -> path."""
    paths = {name: os.path.join(folder, f"{safe_file_name(image_name(label, name))} {item[:8]}.png") for name in files}
    try:
        os.makedirs(folder, exist_ok=True)
        write_all({paths[name]: data for name, data in files.items()})
    except (OSError, WriteError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise ResultError(f"could not write the images next to the .blend: {reason}") from None
    return paths


def safe_file_name(name: str) -> str:
    return re.sub(r'[\\/:*?"<>|\x00-\x1f]+', "_", name).strip(" .") or "result"


def result_image(
    created: Created, name: str, png: bytes, pixels: png_decoder.Pixels | None, non_color: bool, file: str = ""
) -> bpy.types.Image:
    """One image of a result: the worker's pixels, with the bridge's PNG packed beside them (or,
    with Save images as files, the PNG the worker wrote beside the .blend as its file).

    Blender's own decoding of a PNG runs on the UI thread (about 100 ms for 2048²), so the image
    stays a generated one holding the decoded pixels (about 20 ms to hand over); the PNG is what
    Export reads and what the image is read from next time (`restore_images`).
    """
    if pixels is None:
        return packed_image(created, name, png, non_color, file)
    img = bpy.data.images.new(name, pixels.width, pixels.height, alpha=True)
    created.images.append(img)
    if non_color:
        img.colorspace_settings.name = "Non-Color"
    img.pixels.foreach_set(pixels.rgba)
    if file:
        img.filepath_raw = bpy.path.relpath(file)
        img[FILE_MARK] = True
    else:
        img.pack(data=png, data_len=len(png))
    img[MARK] = True
    return img


def restore_images() -> int:
    """Results' images that came back from a saved .blend (or an undo step) without their pixels:
    read them from their packed PNG (or their file), as Blender reads any image (when first drawn)."""
    restored = 0
    for img in bpy.data.images:
        if img.get(MARK) and img.source == "GENERATED" and not img.has_data:
            if img.packed_file is not None or img.get(FILE_MARK):
                img.source = "FILE"
                restored += 1
    return restored


def original_png(img: bpy.types.Image | None) -> bytes | None:
    """The bridge's PNG a result's image holds: packed in the .blend, or its file beside it
    (None: not a result's image, or its file is gone)."""
    if img is None:
        return None
    if img.packed_file is not None:
        return bytes(img.packed_file.data)
    if img.get(FILE_MARK):
        try:
            with open(bpy.path.abspath(img.filepath_raw), "rb") as f:
                return f.read()
        except OSError:
            return None
    return None


def packed_image(created: Created, name: str, png: bytes, non_color: bool, file: str = "") -> bpy.types.Image:
    """An image from PNG bytes (packed, with no temporary file; or the file written beside the
    .blend), decoded by Blender on this thread: for a PNG the worker's decoder does not read."""
    img = bpy.data.images.new(name, 1, 1)
    created.images.append(img)
    if file:
        img.filepath_raw = bpy.path.relpath(file)
        img[FILE_MARK] = True
    else:
        img.pack(data=png, data_len=len(png))
    img.source = "FILE"
    width, height = struct.unpack(">II", png[16:24])
    if tuple(img.size) != (width, height):  # reading the size makes Blender decode the image
        raise ResultError(f"Blender could not read the image {name!r} the bridge sent")
    if non_color:
        img.colorspace_settings.name = "Non-Color"
    return img


def build_material(
    created: Created, name: str, color: bpy.types.Image, maps: dict[str, bpy.types.Image], use_uv: bool, tiling: float
):
    """Principled BSDF fed by the colour image; ao multiplied into the base colour, roughness ->
    Roughness, height -> Bump, normal -> Normal Map. `tiling`: repeats of the texture across the
    surface, on the Mapping node (the artist can change it there)."""
    mat = bpy.data.materials.new(name)
    created.materials.append(mat)
    mat.use_fake_user = True  # results the artist has not placed yet must survive a save
    mat.use_nodes = True
    tree = mat.node_tree
    bsdf = next(n for n in tree.nodes if n.type == "BSDF_PRINCIPLED")
    coords = tree.nodes.new("ShaderNodeTexCoord")
    coords.location = (-1000, 200)
    mapping = tree.nodes.new("ShaderNodeMapping")
    mapping.location = (-800, 200)
    tree.links.new(coords.outputs["UV" if use_uv else "Object"], mapping.inputs["Vector"])
    mapping.inputs["Scale"].default_value = (tiling, tiling, tiling)
    texture = partial(_texture, tree, mapping, use_uv)
    base = texture(color, 300)
    tree.links.new(base.outputs["Alpha"], bsdf.inputs["Alpha"])  # sprites and icons cut out; textures are opaque
    colour = base.outputs["Color"]
    if "ao" in maps:
        colour = _multiplied(tree, colour, texture(maps["ao"], 600).outputs["Color"])
    tree.links.new(colour, bsdf.inputs["Base Color"])
    if "roughness" in maps:
        tree.links.new(texture(maps["roughness"], -600).outputs["Color"], bsdf.inputs["Roughness"])
    relief = _relief(tree, maps, texture)
    if relief is not None:
        tree.links.new(relief, bsdf.inputs["Normal"])
    return mat


def _texture(
    tree: bpy.types.NodeTree, mapping: bpy.types.Node, use_uv: bool, image: bpy.types.Image, y: int
) -> bpy.types.ShaderNodeTexImage:
    """An image texture node at height `y`, read through the Mapping node (box projection without UVs)."""
    node = tree.nodes.new("ShaderNodeTexImage")
    node.image = image
    node.location = (-500, y)
    node.extension = "REPEAT"
    if not use_uv:
        node.projection = "BOX"
        node.projection_blend = 0.2
    tree.links.new(mapping.outputs["Vector"], node.inputs["Vector"])
    return node


def _multiplied(tree: bpy.types.NodeTree, a: bpy.types.NodeSocket, b: bpy.types.NodeSocket) -> bpy.types.NodeSocket:
    """a x b, as colours: a Mix node in RGBA mode. Its colour sockets share their names ("A",
    "B", "Result") with its float and vector ones, which are first, so they are found by identifier."""
    mix = tree.nodes.new("ShaderNodeMix")
    mix.data_type, mix.blend_type = "RGBA", "MULTIPLY"
    mix.location = (-200, 450)
    _socket(mix.inputs, "Factor_Float").default_value = 1.0
    tree.links.new(a, _socket(mix.inputs, "A_Color"))
    tree.links.new(b, _socket(mix.inputs, "B_Color"))
    return _socket(mix.outputs, "Result_Color")


def _socket(sockets: Any, identifier: str) -> bpy.types.NodeSocket:
    return next(s for s in sockets if s.identifier == identifier)


def _relief(
    tree: bpy.types.NodeTree, maps: dict[str, bpy.types.Image], texture: Callable[[bpy.types.Image, int], Any]
) -> bpy.types.NodeSocket | None:
    """The surface normal from the normal map (Normal Map) and the height map (Bump, on top of the
    normal map's), or None without either."""
    normal_out = None
    if "normal" in maps:
        nmap = tree.nodes.new("ShaderNodeNormalMap")
        nmap.location = (-200, -300)
        tree.links.new(texture(maps["normal"], -300).outputs["Color"], nmap.inputs["Color"])
        normal_out = nmap.outputs["Normal"]
    if "height" in maps:
        bump = tree.nodes.new("ShaderNodeBump")
        bump.location = (-200, 0)
        bump.inputs["Strength"].default_value = 0.4
        tree.links.new(texture(maps["height"], 0).outputs["Color"], bump.inputs["Height"])
        if normal_out is not None:
            tree.links.new(normal_out, bump.inputs["Normal"])
        normal_out = bump.outputs["Normal"]
    return normal_out


def new_plane(created: Created, name: str, location: tuple[float, float, float]) -> bpy.types.Object:
    """A UV-mapped square plane, made from data (no operator, so no context is needed)."""
    half = PLANE_SIZE / 2
    mesh = bpy.data.meshes.new(name)
    created.meshes.append(mesh)
    mesh.from_pydata([(-half, -half, 0), (half, -half, 0), (half, half, 0), (-half, half, 0)], [], [(0, 1, 2, 3)])
    uv = mesh.uv_layers.new(name="UVMap")
    for loop, co in zip(mesh.loops, [(0, 0), (1, 0), (1, 1), (0, 1)]):
        uv.data[loop.index].uv = co
    mesh.update()
    obj = bpy.data.objects.new(name, mesh)
    created.objects.append(obj)
    obj.location = location
    bpy.context.scene.collection.objects.link(obj)
    return obj


def assign(obj: bpy.types.Object, mat: bpy.types.Material) -> None:
    """Put the material in the object's active slot (adding a slot if it has none)."""
    if not obj.material_slots:
        obj.data.materials.append(mat)
    else:
        obj.material_slots[obj.active_material_index].material = mat


KIND_WORDS = {"variations": "variation", "interpolate": "blend", "steer": "steered", "regenerate": "again"}


def result_label(item: dict[str, Any], kind: str) -> str:
    """What a result's object, material and images are called: the generator and, for a result
    generated from a seed, the seed; otherwise what made it and the item's short id (a blend or a
    steered result has no seed of its own to show)."""
    generator = item.get("generator") or "gan"
    if kind == "generate" and item.get("seed") is not None:
        return f"{generator} {item['seed']}"
    return f"{generator} {KIND_WORDS.get(kind, kind)} {str(item.get('item', ''))[:8]}".rstrip()


def free_spot(origin: Any, first_step: int) -> tuple[float, float, float]:
    """The first place in the row to the right of `origin`, from `first_step` slots on, where no
    object stands: results of every request from one object (or from the 3D cursor) line up
    instead of piling onto the same spots."""
    slot = PLANE_SIZE + ROW_GAP
    taken = [o.matrix_world.translation for o in bpy.context.scene.objects]
    step = first_step
    while any(
        abs(t.x - (origin.x + step * slot)) < slot / 2
        and abs(t.y - origin.y) < slot / 2
        and abs(t.z - origin.z) < slot / 2
        for t in taken
    ):
        step += 1
    return (origin.x + step * slot, origin.y, origin.z)


def image_name(label: str, image: str) -> str:
    return f"GAN {label}" if image == "color" else f"GAN {label} {image}"


def apply_texture(
    item: dict[str, Any],
    images: dict[str, tuple[bpy.types.Image, bytes]],
    created: Created,
    placement: tuple[bpy.types.Object | None, bool, str],
    tiling: float,
) -> dict[str, Any]:
    """The material (and plane) for a result whose images are made; returns what was made (names)
    for the history. Whatever it makes goes into `created`, for the caller's rollback.

    images: name ("color", then maps) -> (image, the PNG packed in it). placement: (target,
    on_target, label). on_target: onto `target` (a new plane at the 3D cursor if None). Otherwise a
    new plane at the first free spot in the row to the right of the target (or of the 3D cursor).
    """
    target, on_target, label = placement
    if target is not None and target.type not in MATERIAL_TYPES:
        target = None  # a camera or a light cannot wear a material: make a plane instead
    color, color_png = images["color"]
    maps = {name: img for name, (img, _) in images.items() if name != "color"}
    if not on_target or target is None:
        origin = target.location if target is not None else bpy.context.scene.cursor.location
        target = new_plane(created, f"GAN {label}", free_spot(origin, 0 if target is None else 1))
    use_uv = target.type == "MESH" and len(target.data.uv_layers) > 0
    mat = build_material(created, f"GAN {label}", color, maps, use_uv, tiling)
    mat["ganbridge_item"] = item["item"]
    mat["ganbridge_recipe"] = json.dumps({k: item.get(k) for k in ("item", "generator", "seed", "width", "height")})
    assign(target, mat)
    return {
        "material": mat.name,
        "images": [color.name, *(img.name for img in maps.values())],
        "object": target.name,
        # The packed bytes are the bridge's file, recipe and credentials inside: their hashes
        # let Export tell later whether they still are (not repacked from edited pixels).
        "sha256": sha256(color_png),
        "maps": {name: {"image": img.name, "sha256": sha256(images[name][1])} for name, img in maps.items()},
    }


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
