"""Results into Blender data: packed images and a material per result, all or nothing.

Everything one result creates is recorded as it is made; if any step fails (a payload that is not
a PNG, an image Blender cannot read, a size that does not match), all of it is removed again, so the
scene is never left half-modified.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import bpy

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PLANE_SIZE = 2.0
ROW_GAP = 0.25
MATERIAL_TYPES = ("MESH", "CURVE", "SURFACE", "META", "FONT")


class ResultError(Exception):
    """A result that cannot be applied; the message is for the artist."""


def decode_png(b64: str, what: str, width: int | None = None, height: int | None = None) -> bytes:
    """base64 -> PNG bytes, checked (signature and IHDR size) before Blender sees them."""
    try:
        data = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise ResultError(f"the {what} from the bridge is not valid base64") from None
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

    def rollback(self) -> None:
        for obj in self.objects:
            bpy.data.objects.remove(obj)
        for mesh in self.meshes:
            bpy.data.meshes.remove(mesh)
        for mat in self.materials:
            bpy.data.materials.remove(mat)
        for img in self.images:
            bpy.data.images.remove(img)


@contextmanager
def all_or_nothing() -> Iterator[Created]:
    created = Created()
    try:
        yield created
    except Exception:
        created.rollback()
        raise


def packed_image(created: Created, name: str, png: bytes, non_color: bool) -> bpy.types.Image:
    """A packed image from PNG bytes, with no temporary file."""
    img = bpy.data.images.new(name, 1, 1)
    created.images.append(img)
    img.pack(data=png, data_len=len(png))
    img.source = "FILE"
    width, height = struct.unpack(">II", png[16:24])
    if tuple(img.size) != (width, height):  # reading the size makes Blender decode the image
        raise ResultError(f"Blender could not read the image {name!r} the bridge sent")
    if non_color:
        img.colorspace_settings.name = "Non-Color"
    return img


def build_material(created: Created, name: str, color: bpy.types.Image, maps: dict[str, bpy.types.Image], use_uv: bool):
    """Principled BSDF fed by the colour image; height -> Bump, normal -> Normal Map."""
    mat = bpy.data.materials.new(name)
    created.materials.append(mat)
    mat.use_fake_user = True  # results the artist has not placed yet must survive a save
    mat.use_nodes = True
    nodes, links = mat.node_tree.nodes, mat.node_tree.links
    bsdf = next(n for n in nodes if n.type == "BSDF_PRINCIPLED")
    coords = nodes.new("ShaderNodeTexCoord")
    coords.location = (-1000, 200)
    mapping = nodes.new("ShaderNodeMapping")
    mapping.location = (-800, 200)
    links.new(coords.outputs["UV" if use_uv else "Object"], mapping.inputs["Vector"])

    def texture(image: bpy.types.Image, y: int) -> bpy.types.ShaderNodeTexImage:
        node = nodes.new("ShaderNodeTexImage")
        node.image = image
        node.location = (-500, y)
        node.extension = "REPEAT"
        if not use_uv:
            node.projection = "BOX"
            node.projection_blend = 0.2
        links.new(mapping.outputs["Vector"], node.inputs["Vector"])
        return node

    base = texture(color, 300)
    links.new(base.outputs["Color"], bsdf.inputs["Base Color"])
    links.new(base.outputs["Alpha"], bsdf.inputs["Alpha"])  # sprites and icons cut out; textures are opaque
    normal_out = None
    if "normal" in maps:
        nmap = nodes.new("ShaderNodeNormalMap")
        nmap.location = (-200, -300)
        links.new(texture(maps["normal"], -300).outputs["Color"], nmap.inputs["Color"])
        normal_out = nmap.outputs["Normal"]
    if "height" in maps:
        bump = nodes.new("ShaderNodeBump")
        bump.location = (-200, 0)
        bump.inputs["Strength"].default_value = 0.4
        links.new(texture(maps["height"], 0).outputs["Color"], bump.inputs["Height"])
        if normal_out is not None:
            links.new(normal_out, bump.inputs["Normal"])
        normal_out = bump.outputs["Normal"]
    if normal_out is not None:
        links.new(normal_out, bsdf.inputs["Normal"])
    return mat


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


def apply_texture(item: dict[str, Any], target: bpy.types.Object | None, on_target: bool, label: str) -> dict[str, Any]:
    """Apply one image item; returns what was made (names) for the history. All or nothing.

    on_target: onto `target` (a new plane at the 3D cursor if None). Otherwise a new plane at the
    first free spot in the row to the right of the target (or of the 3D cursor).
    """
    if target is not None and target.type not in MATERIAL_TYPES:
        target = None  # a camera or a light cannot wear a material: make a plane instead
    width, height = item.get("width"), item.get("height")
    color_png = decode_png(item.get("data", ""), "image", width, height)
    maps_png = {
        name: decode_png(m.get("data", ""), f"{name} map", width, height)
        for name, m in (item.get("maps") or {}).items()
    }
    with all_or_nothing() as created:
        color = packed_image(created, f"GAN {label}", color_png, non_color=False)
        maps = {name: packed_image(created, f"GAN {label} {name}", png, True) for name, png in maps_png.items()}
        if not on_target or target is None:
            origin = target.location if target is not None else bpy.context.scene.cursor.location
            target = new_plane(created, f"GAN {label}", free_spot(origin, 0 if target is None else 1))
        use_uv = target.type == "MESH" and len(target.data.uv_layers) > 0
        mat = build_material(created, f"GAN {label}", color, maps, use_uv)
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
            "maps": {name: {"image": img.name, "sha256": sha256(maps_png[name])} for name, img in maps.items()},
        }


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
