"""The bridge adapter for images: params, sizes, upscaling, backgrounds and PNG outputs."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from pydantic import ConfigDict, Field, create_model

from ganbridge.generators.base import (
    Cost,
    DiscretePart,
    Latent,
    ModelParams,
    ModelSetGenerator,
    Output,
    each_alone,
    one_of,
)
from ganbridge.generators.image.field import EDGE_BLUR, blurred, edge_alpha, upscaled
from ganbridge.generators.image.model import ANY, MAX_SIZE, NATIVE, ImageNetwork, LoadedImageNetwork
from ganbridge.generators.image.vector import svg_outline
from ganbridge.generators.pixels import encode_png

CLEAR_BELOW, SOLID_ABOVE = 24, 232  # alpha levels of crisp edges (see crisp_alpha)
MAX_MARGIN = 8  # native pixels: an eighth of the canvas a side
WEIGHT_LEVEL = 0.45  # weight +-1 draws the edge at this far below (above) the alpha field's half level
FEATURE_SIDE = 16  # pixels per side of the image as output_features sees it
# Luminance and two opponent chroma axes of RGB (see output_features).
OPPONENT = [[1 / 3, 1 / 3, 1 / 3], [1.0, -1.0, 0.0], [0.5, 0.5, -1.0]]


class ImageParams(ModelParams):
    """An image request. `image_params_model` gives `model` its schema and adds `category` for
    installed models with categories; without any, a request has no category field at all."""

    model_config = ConfigDict(extra="forbid", title="Image parameters")

    seed: int | None = Field(None, ge=0, le=2**31 - 1, title="Seed", description="Empty: random")
    truncation: float = Field(0.4, ge=0.1, le=1.0, title="Truncation", description="Lower: more typical, less varied")
    size: int = Field(256, ge=NATIVE, le=MAX_SIZE, title="Size", description="Output pixels (upscaled from 64)")
    upscale: Literal["smooth", "nearest", "lanczos"] = Field(
        "smooth",
        title="Upscale",
        description="Smooth: crisp edges that follow the curves (glyphs, icons); nearest keeps hard pixels (pixel art); "
        "Lanczos blurs",
    )
    background: str = Field(
        "transparent",
        pattern=r"^(transparent|#[0-9a-fA-F]{6})$",
        title="Background",
        description="transparent, or a colour like #ffffff",
    )
    edges: Literal["crisp", "soft"] = Field(
        "crisp",
        title="Edges",
        description="Crisp: faint alpha cleared and near-solid alpha made solid; soft: alpha as the model draws it",
    )
    margin: int = Field(
        1,
        ge=0,
        le=MAX_MARGIN,
        title="Margin",
        description="Pixels at the canvas's edge left empty, at the model's native 64 px",
    )
    format: Literal["png", "svg"] = Field(
        "png",
        title="Format",
        description="png: pixels; svg: the ink's outline as a vector in one colour, sharp at any size",
    )
    weight: float = Field(
        0.0,
        ge=-1.0,
        le=1.0,
        title="Weight",
        description="Stroke weight: above 0 bolder, below 0 lighter (by a native pixel or so at 1 and -1); 0: as drawn",
    )


def image_params_model(models: list[str], classes: list[str]) -> type[ImageParams]:
    fields: dict[str, Any] = {
        "model": (one_of(models), Field(models[0], title="Model", description="Which trained image model")),
    }
    if classes:
        fields["category"] = (
            one_of([ANY, *classes]),
            Field(ANY, title="Category", description="What kind of image (any: the model picks)"),
        )
    return create_model("ImageParams", __base__=ImageParams, **fields)


def crisp_alpha(pixels: np.ndarray) -> np.ndarray:
    """RGBA with alpha's levels set: below CLEAR_BELOW nothing, above SOLID_ABOVE solid, linear
    between. The networks leave a faint haze where the training images have none (alpha 1-15 on
    about a fifth of a glyph's pixels, where the training glyphs have 0.3%) and a soft ramp at
    every edge; this clears the one and narrows the other, as a levels step on a mask does."""
    out = pixels.copy()
    alpha = pixels[..., 3].astype(np.float32)
    ramp = (alpha - CLEAR_BELOW) * (255.0 / (SOLID_ABOVE - CLEAR_BELOW))
    out[..., 3] = np.clip(np.rint(ramp), 0, 255).astype(np.uint8)
    out[out[..., 3] == 0, :3] = 0  # no colour where nothing is drawn
    return out


def clear_margin(pixels: np.ndarray, margin: int) -> np.ndarray:
    """RGBA with nothing drawn within `margin` pixels of the canvas's edge. The networks ink the
    outermost pixel of about a third of their canvases, faintly (zero padding at every layer reads
    as an edge; the training glyphs keep that pixel empty), a thin box around the glyph that a
    margin of 1 removes."""
    if margin == 0:
        return pixels
    out = np.zeros_like(pixels)
    out[margin:-margin, margin:-margin] = pixels[margin:-margin, margin:-margin]
    return out


def weighted(pixels: np.ndarray, weight: float) -> np.ndarray:
    """A native RGBA image with its strokes bolder (`weight` > 0) or lighter (< 0): alpha is read
    as a field (blurred by EDGE_BLUR) whose level line is the edge, and the edge drawn at a level
    moved from 1/2 by WEIGHT_LEVEL * weight, one pixel wide (as distance-field text is emboldened),
    so the outline keeps its shape and moves in or out alike everywhere. Newly inked pixels take
    the colour of the ink beside them. 0: the image itself."""
    if weight == 0:
        return pixels
    rgba = pixels.astype(np.float32) / 255.0
    alpha = rgba[..., 3]
    edge = edge_alpha(blurred(alpha, EDGE_BLUR), 0.5 - WEIGHT_LEVEL * weight)
    near = np.maximum(blurred(alpha, 1.0), 1e-3)
    beside = np.stack([blurred(rgba[..., c] * alpha, 1.0) / near for c in range(3)], axis=-1)
    colour = np.where(alpha[..., None] > 0, rgba[..., :3], np.clip(beside, 0.0, 1.0))
    out = np.concatenate([colour, edge[..., None]], axis=-1)
    out = np.rint(out * 255).astype(np.uint8)
    out[out[..., 3] == 0, :3] = 0  # no colour where nothing is drawn, as crisp_alpha leaves it
    return out


def stroke_width(pixels: np.ndarray) -> float:
    """The mean width of an RGBA image's strokes, in pixels: twice the ink's area over the length
    of its outline (alpha's total variation), as a stroke of width w and length l has area w*l
    and outline 2*l. Measured on the alpha levels, so it moves smoothly with `weighted`."""
    alpha = pixels[..., 3].astype(np.float32) / 255.0
    gy, gx = np.gradient(alpha)
    return float(2.0 * alpha.sum() / max(float(np.hypot(gx, gy).sum()), 1e-6))


def weight_for_width(pixels: np.ndarray, width: float, margin: int = 0) -> float:
    """The `weight` (-1..1) at which a native RGBA image's strokes are `width` pixels wide (by
    stroke_width, the margin then cleared as render clears it), or the end of the range nearest
    it: a bisection, as the width grows with the weight."""

    def width_at(weight: float) -> float:
        return stroke_width(clear_margin(weighted(pixels, weight), margin))

    low, high = -1.0, 1.0
    if width_at(high) <= width:
        return high
    if width_at(low) >= width:
        return low
    for _ in range(12):  # to 1/2048 of the range, finer than a level of alpha
        middle = (low + high) / 2
        low, high = (middle, high) if width_at(middle) < width else (low, middle)
    return round((low + high) / 2, 3)


def image_look(pixels: np.ndarray) -> np.ndarray:
    """How a native RGBA image looks, for steering (Output.look): the planes output_features
    describes (alpha, and luminance and two chroma axes premultiplied by alpha), box-averaged to
    FEATURE_SIDE x FEATURE_SIDE, from the finished pixels (the size, upscaling and background a
    request asks for do not change it)."""
    rgba = pixels.astype(np.float32) / 255.0
    alpha = rgba[..., 3:]
    colour = (rgba[..., :3] * alpha) @ np.asarray(OPPONENT, np.float32).T
    planes = np.concatenate([alpha, colour], axis=-1)  # (H, W, 4)
    h, w = planes.shape[:2]
    if h % FEATURE_SIDE or w % FEATURE_SIDE:
        raise ValueError(f"a {w}x{h} image does not divide into {FEATURE_SIDE}x{FEATURE_SIDE} blocks")
    blocks = planes.reshape(FEATURE_SIDE, h // FEATURE_SIDE, FEATURE_SIDE, w // FEATURE_SIDE, 4)
    return blocks.mean(axis=(1, 3)).transpose(2, 0, 1).ravel()


def smooth_upscale(pixels: np.ndarray, size: int) -> Image.Image:
    """A native RGBA image at `size` with edges that stay crisp at any size. Alpha is upscaled as
    a smooth field (Lanczos) whose half-level line is the edge, and each pixel's alpha becomes its
    distance to that line in output pixels, (field - 1/2) / |gradient|, plus 1/2, as
    distance-field text is drawn: an edge one pixel wide that follows the curve, where nearest
    upscaling leaves steps and Lanczos a ramp as wide as a native pixel. The field is blurred by
    EDGE_BLUR native pixels first, which smooths the network's pixel-scale raggedness (and, on real
    glyphs boxed down to 64 px, brings the contour nearer the font's: 0.41 alpha levels off, 0.45
    unblurred). Colour is blurred and upscaled premultiplied, then divided by the field, so what
    lies under no ink does not bleed into the edge."""
    rgba = pixels.astype(np.float32) / 255.0
    alpha = rgba[..., 3]
    field = upscaled(alpha, size)
    cover = np.maximum(field, 1e-3)
    colour = [np.clip(upscaled(rgba[..., c] * alpha, size) / cover, 0.0, 1.0) for c in range(3)]
    out = np.stack([*colour, edge_alpha(field)], axis=-1)
    return Image.fromarray(np.rint(out * 255).astype(np.uint8), "RGBA")


def finish(pixels: np.ndarray, size: int, upscale: str, background: str) -> np.ndarray:
    """Upscale a native RGBA image and put it on its background."""
    img = Image.fromarray(pixels, "RGBA")
    if size != img.width and upscale == "smooth":
        img = smooth_upscale(pixels, size)
    elif size != img.width:
        img = img.resize((size, size), Image.Resampling.NEAREST if upscale == "nearest" else Image.Resampling.LANCZOS)
    if background != "transparent":
        colour = tuple(int(background[i : i + 2], 16) for i in (1, 3, 5)) + (255,)
        base = Image.new("RGBA", img.size, colour)
        img = Image.alpha_composite(base, img)
    return np.asarray(img)


class ImageGenerator(ModelSetGenerator[ImageParams, ImageNetwork]):
    """Sprites, icons and glyphs from small-data GANs; one or more trained models."""

    name = "image"
    kind = "image"
    description = "Sprites, icons and emoji-like images (64x64 RGBA GAN), upscaled to any size"
    outputs = ["png", "svg"]
    direction_settings = {"size": NATIVE, "truncation": 1.0}
    params_before = {"edges": "soft", "margin": 0, "weight": 0.0, "format": "png"}
    direction_features = (
        f"the 64 px output box-averaged to {FEATURE_SIDE}x{FEATURE_SIDE}: alpha, and luminance and two chroma axes "
        "premultiplied by alpha"
    )

    def __init__(self, models: Sequence[LoadedImageNetwork], device: str = "cpu"):
        self._set_models(models, device)
        classes = sorted({c for m in self.models.values() for c in m.net.config.classes})
        self.params_model = image_params_model(list(self.models), classes)
        self._load_directions()

    def latent_shapes(self, params: ImageParams) -> dict[str, tuple[int, ...]]:
        return {"z": (self.models[params.model].net.config.z_dim,), "class": (1,)}

    def discrete_parts(self, params: ImageParams) -> dict[str, DiscretePart]:
        classes = self.models[params.model].net.config.classes
        if not classes or getattr(params, "category", ANY) != ANY:
            return {}
        return {"class": DiscretePart(len(classes))}

    def direction_shapes(self, params: ImageParams) -> dict[str, tuple[int, ...]]:
        # "class" is a choice (or unused when a category is asked), never part of a direction.
        return {"z": self.latent_shapes(params)["z"]}

    def output_features(self, params: ImageParams, latents: Sequence[Latent]) -> np.ndarray:
        """The image at FEATURE_SIDE x FEATURE_SIDE (box-averaged): alpha, and luminance and two
        chroma axes premultiplied by alpha, so that colour where nothing is drawn does not count and
        a grey model's constant chroma drops out."""
        model = self.models[params.model]
        device = next(model.net.parameters()).device
        labels = torch.tensor([self.label(params, z) for z in latents], device=device)
        z = torch.from_numpy(np.stack([lat["z"] for lat in latents])).to(device) * params.truncation
        with torch.inference_mode():
            x = (model.net(z, labels if model.net.embed is not None else None).float() + 1) / 2  # premultiplied
            colour = torch.einsum("cd,bdhw->bchw", torch.tensor(OPPONENT, device=device), x[:, :3])
            planes = torch.cat([x[:, 3:], colour], dim=1)
            small = F.adaptive_avg_pool2d(planes, FEATURE_SIDE)
        return small.flatten(1).cpu().numpy()

    def batch_key(self, params: ImageParams) -> Hashable:
        return params.model

    def max_batch(self, params: ImageParams) -> int:
        return 32

    def cost(self, params: ImageParams) -> Cost:
        return Cost("pixels", params.size * params.size, f"{params.size}x{params.size}")

    def label(self, params: ImageParams, latent: Latent) -> int:
        """The class index: the requested category, or (for "any") one drawn from the latent, so
        that "any" stays reproducible from the recipe."""
        classes = self.models[params.model].net.config.classes
        if not classes:
            return 0
        wanted = getattr(params, "category", ANY)
        if wanted != ANY:
            if wanted not in classes:
                raise ValueError(f"model {params.model!r} has no category {wanted!r}; it has {', '.join(classes)}")
            return classes.index(wanted)
        return DiscretePart(len(classes)).index(latent["class"])

    def render(self, params: Sequence[ImageParams], latents: Sequence[Latent]) -> list[Output]:
        model = self.models[params[0].model]
        labels = [self.label(p, z) for p, z in zip(params, latents)]
        # One item at a time: a batched pass can move a pixel by one level (see each_alone).
        images = each_alone(model.net.sample, latents, labels, [p.truncation for p in params])
        outputs = []
        for p, img, label in zip(params, images, labels):
            native = clear_margin(weighted(crisp_alpha(img) if p.edges == "crisp" else img, p.weight), p.margin)
            extra: dict[str, Any] = {"width": p.size, "height": p.size}
            if model.net.config.classes:
                extra["category"] = model.net.config.classes[label]
            if p.format == "svg":
                data, fmt, mime = svg_outline(native, p.size, p.background), "svg", "image/svg+xml"
            else:
                data, fmt, mime = encode_png(finish(native, p.size, p.upscale, p.background)), "png", "image/png"
            outputs.append(Output(data=data, format=fmt, mime=mime, extra=extra, look=image_look(native)))
        return outputs
