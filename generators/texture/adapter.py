"""The bridge adapter for textures: params, batching and PNG outputs with height and normal maps."""

from __future__ import annotations

import os
from collections.abc import Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

import numpy as np
import torch
from pydantic import ConfigDict, Field, create_model

from ganbridge.generators.base import Cost, Latent, ModelParams, ModelSetGenerator, Output, each_alone, one_of
from ganbridge.generators.checkpoint import CheckpointError
from ganbridge.generators.pixels import encode_png
from ganbridge.generators.texture.maps import height_map, height_to_uint8, normal_map
from ganbridge.generators.texture.model import LoadedTextureNetwork, TextureNetwork

MAX_SIDE = 2048
MIN_SIDE = 32
CPU_LANES = max(1, min(4, os.cpu_count() or 1))
_LANES = ThreadPoolExecutor(max_workers=CPU_LANES, thread_name_prefix="texture-lane")


class TextureParams(ModelParams):
    """A texture request. `texture_params_model` gives `model`, `width` and `height` their schema,
    which depends on the installed models (their names and stride)."""

    model_config = ConfigDict(extra="forbid", title="Texture parameters")

    width: int
    height: int
    seed: int | None = Field(None, ge=0, le=2**31 - 1, title="Seed", description="Empty: random")
    tileable: bool = Field(True, title="Seamless", description="Wraps at its edges")
    temperature: float = Field(1.0, ge=0.0, le=2.0, title="Temperature", description="Local variety")
    maps: list[Literal["height", "normal"]] = Field(
        [], max_length=2, title="Extra maps", description="Derived height / normal maps"
    )


def texture_params_model(models: list[str], stride: int) -> type[TextureParams]:
    """The params schema plugins draw; `model` is an enum of the installed textures."""

    def side(title: str) -> Any:  # a FieldInfo, which Field's stubs give the type of its default
        description = f"Pixels, a multiple of {stride}"
        return Field(512, title=title, description=description, ge=MIN_SIDE, le=MAX_SIDE, multiple_of=stride)

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
    description = "Seamless tileable textures (spatial GAN), any size; optional height and normal maps"
    outputs = ["png"]

    def __init__(self, models: Sequence[LoadedTextureNetwork], device: str = "cpu"):
        self._set_models(models, device)
        strides = {m.net.config.stride for m in self.models.values()}
        if len(strides) != 1:
            raise CheckpointError(f"texture models disagree on stride: {sorted(strides)}")
        self.stride = strides.pop()
        self.params_model = texture_params_model(list(self.models), self.stride)

    def _render_size(self, params: TextureParams) -> tuple[int, int]:
        # A non-tileable texture is cut from a larger tileable one, so its edges do not wrap.
        margin = 0 if params.tileable else 4 * self.stride
        return params.height + margin, params.width + margin

    def latent_shapes(self, params: TextureParams) -> dict[str, tuple[int, ...]]:
        return self.models[params.model].net.latent_shapes(*self._render_size(params))

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
        if not params.tileable:
            top = (pixels.shape[0] - params.height) // 2
            left = (pixels.shape[1] - params.width) // 2
            pixels = pixels[top : top + params.height, left : left + params.width]
        attachments: dict[str, bytes] = {}
        if params.maps:
            height = height_map(pixels)
            if "height" in params.maps:
                attachments["height"] = encode_png(height_to_uint8(height))
            if "normal" in params.maps:
                attachments["normal"] = encode_png(normal_map(height))
        return Output(
            data=encode_png(np.ascontiguousarray(pixels)),
            format="png",
            mime="image/png",
            extra={"width": params.width, "height": params.height},
            attachments=attachments,
        )
