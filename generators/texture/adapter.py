"""The bridge adapter for textures: params, batching and PNG outputs with height and normal maps."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import ConfigDict, Field, create_model, field_validator

from ganbridge.generators.base import Cost, Latent, ModelParams, ModelSetGenerator, Output, each_alone, one_of
from ganbridge.generators.checkpoint import CheckpointError
from ganbridge.generators.pixels import encode_png
from ganbridge.generators.texture.maps import (
    ambient_occlusion_map,
    height_map,
    normal_map,
    roughness_map,
    unit_to_uint8,
)
from ganbridge.generators.texture.model import LoadedTextureNetwork, TextureNetwork
from ganbridge.generators.texture.resample import resize

# Luminance and two opponent chroma axes: a grey model's chroma is constant, so its colour is not
# counted three times over, as three identical RGB channels would be.
OPPONENT = torch.tensor([[1 / 3, 1 / 3, 1 / 3], [1.0, -1.0, 0.0], [0.5, 0.5, -1.0]])
LUMA = np.array([0.299, 0.587, 0.114], np.float32)  # Rec. 601 weights: a grey texture keeps its value
LAGS = (1, 2, 4, 8, 16)  # pixels, up to one latent cell
HISTOGRAM_BINS = 8

MAX_SIDE = 2048
MIN_SIDE = 32
TINT_PATTERN = re.compile(r"#[0-9a-fA-F]{6}")
MIN_SCALE, MAX_SCALE = 0.5, 4.0  # below 0.5 a 2048 texture would render 4096+ a side
CPU_LANES = max(1, min(4, os.cpu_count() or 1))
_LANES = ThreadPoolExecutor(max_workers=CPU_LANES, thread_name_prefix="texture-lane")


MapName = Literal["height", "normal", "roughness", "ao"]
MAP_NAMES: tuple[str, ...] = MapName.__args__  # type: ignore[attr-defined]


class TextureParams(ModelParams):
    """A texture request. `texture_params_model` gives `model`, `width` and `height` their schema,
    which depends on the installed models (their names and stride)."""

    model_config = ConfigDict(extra="forbid", title="Texture parameters")

    width: int
    height: int
    seed: int | None = Field(None, ge=0, le=2**31 - 1, title="Seed", description="Empty: random")
    tileable: bool = Field(True, title="Seamless", description="Wraps at its edges")
    temperature: float = Field(1.0, ge=0.0, le=2.0, title="Temperature", description="Local variety")
    maps: list[MapName] = Field(
        [],
        max_length=len(MAP_NAMES),
        title="Extra maps",
        description="Derived, seamless material maps: height, normal, roughness, ao (ambient occlusion)",
    )
    normal_strength: float = Field(
        4.0, ge=0.0, le=32.0, title="Normal strength", description="How steep the normal map makes the relief"
    )
    scale: float = Field(
        1.0,
        ge=MIN_SCALE,
        le=MAX_SCALE,
        title="Scale",
        description="Feature size at the same pixel size: 2 makes the pattern twice as large",
    )
    tint: str | None = Field(
        None,
        json_schema_extra={"pattern": f"^{TINT_PATTERN.pattern}$", "format": "color"},
        title="Tint",
        description="A colour as #rrggbb: the texture recoloured from its lightness (for the grey models)",
    )

    @field_validator("tint")
    @classmethod
    def tint_is_a_colour(cls, tint: str | None) -> str | None:
        if tint is not None and not TINT_PATTERN.fullmatch(tint):
            raise ValueError(f"a tint is a colour as #rrggbb, such as #a0522d, not {tint!r}")
        return None if tint is None else tint.lower()

    @field_validator("maps")
    @classmethod
    def each_map_once(cls, maps: list[str]) -> list[str]:
        if len(set(maps)) != len(maps):
            raise ValueError("each map may be asked for once")
        return maps


def texture_params_model(models: list[str], stride: int) -> type[TextureParams]:
    """The params schema plugins draw; `model` is an enum of the installed textures."""

    def side(title: str) -> Any:  # a FieldInfo, which Field's stubs give the type of its default
        description = f"Pixels, any number from {MIN_SIDE} to {MAX_SIDE}"
        return Field(512, title=title, description=description, ge=MIN_SIDE, le=MAX_SIDE)

    return create_model(
        "TextureParams",
        __base__=TextureParams,
        model=(one_of(models), Field(models[0], title="Texture", description="Which trained texture")),
        width=(int, side("Width")),
        height=(int, side("Height")),
    )


class TextureGenerator(ModelSetGenerator[TextureParams, TextureNetwork]):
    name = "texture"
    kind = "texture"
    description = "Seamless tileable textures (spatial GAN), any size; optional height, normal, roughness and ambient-occlusion maps"
    outputs = ["png"]
    direction_settings = {"width": 128, "height": 128}
    direction_features = (
        "28 shift-invariant appearance statistics of the raw output: mean and spread of luminance and two "
        "chroma axes, RMS luminance gradient in 4 directions, luminance autocorrelation at lags 1-16 px across "
        "and down, an 8-bin luminance histogram"
    )

    def __init__(self, models: Sequence[LoadedTextureNetwork], device: str = "cpu"):
        self._set_models(models, device)
        strides = {m.net.config.stride for m in self.models.values()}
        if len(strides) != 1:
            raise CheckpointError(f"texture models disagree on stride: {sorted(strides)}")
        self.stride = strides.pop()
        self.params_model = texture_params_model(list(self.models), self.stride)
        self._load_directions()

    def _pattern_size(self, params: TextureParams) -> tuple[int, int]:
        """The pixels of pattern the texture holds: its size at scale 1, fewer when the pattern
        is scaled up (then resampled to the asked size)."""
        return math.ceil(params.height / params.scale), math.ceil(params.width / params.scale)

    def _render_size(self, params: TextureParams) -> tuple[int, int]:
        """What the network renders: whole latent cells, the pattern's size or the next one up (a
        seamless texture is resampled to the asked size with wrap-around, resample.py), so a
        tile holds whole cells and the scale is the nearest that allows that. A non-tileable
        texture is cut from a larger tileable one, so its edges do not wrap."""
        margin = 0 if params.tileable else 4 * self.stride
        cells = lambda side: -(-side // self.stride) * self.stride  # noqa: E731
        height, width = self._pattern_size(params)
        return cells(height) + margin, cells(width) + margin

    def latent_shapes(self, params: TextureParams) -> dict[str, tuple[int, ...]]:
        return self.models[params.model].net.latent_shapes(*self._render_size(params))

    def direction_shapes(self, params: TextureParams) -> dict[str, tuple[int, ...]]:
        # The local grid grows with the output: its direction is one shift for every cell.
        shapes = self.latent_shapes(params)
        return {**shapes, "local": (shapes["local"][0], 1, 1)}

    @torch.inference_mode()
    def output_features(self, params: TextureParams, latents: Sequence[Latent]) -> np.ndarray:
        """Shift-invariant appearance statistics of the network's raw output (before rounding to
        pixels), so that where a brick lies does not count, only what the texture looks like."""
        model = self.models[params.model]
        device = next(model.net.parameters()).device
        local, global_code, phase = (
            torch.from_numpy(np.stack([z[k] for z in latents])).to(device) for k in ("local", "global", "phase")
        )
        images = model.net(local * params.temperature, global_code, phase).float()
        if model.card["data"].get("grayscale", False):
            images = images.mean(dim=1, keepdim=True).expand(-1, 3, -1, -1)
        return appearance(images).cpu().numpy()

    def batch_key(self, params: TextureParams) -> Hashable:
        return (params.model, *self._render_size(params))

    def cost(self, params: TextureParams) -> Cost:
        h, w = self._render_size(params)
        maps = f" with {len(params.maps)} map{'s' * (len(params.maps) > 1)}" if params.maps else ""
        return Cost("pixels", h * w * (1 + len(params.maps)), f"{params.width}x{params.height}{maps}")

    def max_batch(self, params: TextureParams) -> int:
        # On a CPU a batch runs as lanes, so it needs no more items than cores; on a GPU its items
        # run one after another (see render), a batch bounded by a pixel budget.
        if self._device == "cpu":
            return CPU_LANES
        h, w = self._render_size(params)
        return max(1, min(16, (4096 * 4096) // (h * w)))

    def render(self, params: Sequence[TextureParams], latents: Sequence[Latent]) -> list[Output]:
        # On a GPU too each image is its own forward pass (see each_alone): batched in one pass,
        # its pixels moved by a level with the batch's size, and a recipe must regenerate exactly.
        if self._device != "cpu":
            return self._render_each(list(params), list(latents))
        # On a CPU a batch runs as one single-threaded lane per core, each image its own forward
        # pass. Measured on 2 cores at 512x512, two lanes give ~1.5x the items/s of one
        # two-threaded forward (these layers are memory-bound; batching within one forward made
        # each image slower here). One image per forward also keeps every pixel independent of
        # how requests happened to be batched. A lone image takes a lane too: a convolution's
        # sums, and so now and then a pixel, change with the thread count (2 of 80 images differed
        # between 1 and 2 threads), and a recipe must regenerate the same bytes however it came.
        return list(_LANES.map(self._render_in_lane, params, latents))

    def _render_in_lane(self, params: TextureParams, latent: Latent) -> Output:
        torch.set_num_threads(1)  # this lane thread's own count; the caller's is left alone
        return self._render_each([params], [latent])[0]

    def _render_each(self, params: list[TextureParams], latents: list[Latent]) -> list[Output]:
        model = self.models[params[0].model]
        grey = bool(model.card["data"].get("grayscale", False))
        images = each_alone(model.net.sample, latents, [p.temperature for p in params], grayscale=grey)
        return [self._encode(p, img) for p, img in zip(params, images)]

    def _encode(self, params: TextureParams, pixels: np.ndarray) -> Output:
        if params.tileable:
            pixels = resize(pixels, params.height, params.width)
        else:
            height, width = self._pattern_size(params)
            top, left = (pixels.shape[0] - height) // 2, (pixels.shape[1] - width) // 2
            pixels = resize(pixels[top : top + height, left : left + width], params.height, params.width, wrap=False)
        # The maps come from the untinted pixels: a tint recolours, it does not change the relief.
        colour = pixels if params.tint is None else tinted(pixels, params.tint)
        return Output(
            data=encode_png(np.ascontiguousarray(colour)),
            format="png",
            mime="image/png",
            extra={"width": params.width, "height": params.height},
            attachments=material_maps(pixels, params),
        )


def tinted(pixels: np.ndarray, tint: str) -> np.ndarray:
    """(H, W, 3) uint8 recoloured from its lightness, as a colourise does: black stays black,
    white stays white, and the texture's mean lightness becomes the tint, linearly in between,
    so a grey texture keeps its contrast and looks the colour asked on average."""
    colour = np.array([int(tint[i : i + 2], 16) for i in (1, 3, 5)], np.float32) / 255.0
    lightness = (pixels.astype(np.float32) @ LUMA)[..., None] / 255.0
    mean = float(np.clip(lightness.mean(), 0.05, 0.95))
    dark = lightness / mean * colour
    light = colour + (lightness - mean) / (1.0 - mean) * (1.0 - colour)
    out = np.where(lightness < mean, dark, light)
    return np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8)


def material_maps(pixels: np.ndarray, params: TextureParams) -> dict[str, bytes]:
    """The asked maps of a texture's pixels, as PNGs in MAP_NAMES' order (all derived from its
    height, so all wrap as the texture does)."""
    if not params.maps:
        return {}
    height = height_map(pixels)
    made: dict[str, np.ndarray] = {"height": unit_to_uint8(height)}
    if "normal" in params.maps:
        made["normal"] = normal_map(height, params.normal_strength)
    if "ao" in params.maps or "roughness" in params.maps:
        occlusion = ambient_occlusion_map(height)
        made["ao"] = unit_to_uint8(occlusion)
        made["roughness"] = unit_to_uint8(roughness_map(height, occlusion))
    return {name: encode_png(made[name]) for name in MAP_NAMES if name in params.maps}


def appearance(images: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) images in [-1, 1] -> (B, 28) statistics that do not change when the texture is
    shifted: the mean and spread of luminance and two chroma axes, the RMS luminance gradient in
    four directions (how sharp, and along which way), the luminance autocorrelation at LAGS across
    and down (how large its features are) and a histogram of luminance (how light or dark)."""
    colour = torch.einsum("cd,bdhw->bchw", OPPONENT.to(images.device), images)
    luma = colour[:, 0]
    centred = luma - luma.mean(dim=(1, 2), keepdim=True)
    variance = centred.pow(2).mean(dim=(1, 2)).clamp_min(1e-8)

    def rolled(dy: int, dx: int) -> torch.Tensor:  # circular: the network's output wraps
        return torch.roll(centred, shifts=(dy, dx), dims=(1, 2))

    gradients = [
        (rolled(dy, dx) - centred).pow(2).mean(dim=(1, 2)).sqrt() for dy, dx in ((0, 1), (1, 0), (1, 1), (1, -1))
    ]
    correlations = [
        (centred * rolled(dy, dx)).mean(dim=(1, 2)) / variance for lag in LAGS for dy, dx in ((0, lag), (lag, 0))
    ]
    bins = ((luma + 1) / 2 * HISTOGRAM_BINS).long().clamp(0, HISTOGRAM_BINS - 1).flatten(1)
    histogram = F.one_hot(bins, HISTOGRAM_BINS).float().mean(dim=1)
    return torch.cat(
        [colour.mean(dim=(2, 3)), colour.std(dim=(2, 3)), torch.stack(gradients + correlations, dim=1), histogram],
        dim=1,
    )
