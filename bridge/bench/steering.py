"""`ganbridge bench --only steering`: simulated artists steering each shipped generator.

Each trial hides a target item (a seeded generate). A simulated user, talking the WebSocket
protocol like any client, sees batches of 8 and likes the 2 nearest the target and dislikes the 2
farthest, by cosine of features centred (and, per group, scaled) on a reference set: 16x16
downsampled pixels for images and textures, patch statistics for textures too (shift-invariant:
a texture is alike wherever its bricks fall), piano-roll statistics for music. Three strategies
see the same first batch and get the same number of items: `steer` (the bridge's steering, the
ratings sent as `feedback`), `variations` of the best item seen so far (strength 0.3), and
`random` batches. The figure is the mean over targets of the best cosine after the last round,
and the gap steering closes: (steer - random) / (1 - random). Beside them, how alike the target's
own variations are to it (strengths in NEAR_STRENGTHS): how smooth the latent is where a search
ends, a ceiling on what any strategy finds in a few dozen items.
"""

from __future__ import annotations

import asyncio
import base64
import io
import itertools
import json
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image
from websockets.asyncio.client import ClientConnection, connect

if TYPE_CHECKING:
    from pydantic import BaseModel

    from ganbridge.core.service import BridgeCore
    from ganbridge.core.store import ItemRecord

STRATEGIES = ("steer", "variations", "random")
NEAR_STRENGTHS = (0.05, 0.1)  # variations of the target itself, at these strengths


@dataclass(frozen=True)
class Task:
    generator: str
    params: dict
    feature: str  # a key of FEATURES


def image_pixels(item: dict) -> np.ndarray:
    """16x16 RGBA, colour premultiplied by alpha (a transparent pixel's colour says nothing)."""
    img = Image.open(io.BytesIO(base64.b64decode(item["data"]))).convert("RGBA")
    a = np.asarray(img.resize((16, 16), Image.Resampling.BOX), np.float32) / 255
    return np.concatenate([a[..., :3] * a[..., 3:], a[..., 3:]], -1).ravel()


def texture_pixels(item: dict) -> np.ndarray:
    img = Image.open(io.BytesIO(base64.b64decode(item["data"]))).convert("RGB")
    return (np.asarray(img.resize((16, 16), Image.Resampling.BOX), np.float32) / 255).ravel()


def texture_statistics(item: dict) -> np.ndarray:
    """Shift-invariant: colour means, spreads and correlations, gradient energy per channel and
    direction, luminance autocorrelation at 1-8 pixels and a luminance histogram."""
    img = Image.open(io.BytesIO(base64.b64decode(item["data"]))).convert("RGB")
    a = np.asarray(img.resize((64, 64), Image.Resampling.BOX), np.float64) / 255
    flat = a.reshape(-1, 3)
    jitter = 1e-9 * np.random.default_rng(0).standard_normal(flat.T.shape)  # a flat channel has no NaN correlation
    corr = np.asarray(np.corrcoef(flat.T + jitter))[np.triu_indices(3, 1)]
    grads = [np.mean(np.abs(np.diff(a, axis=ax, append=np.take(a, [0], axis=ax))), axis=(0, 1)) for ax in (0, 1)]
    lum = a.mean(-1) - a.mean()
    auto = [np.mean(lum * np.roll(lum, s, axis=ax)) / (lum.var() + 1e-9) for s in (1, 2, 4, 8) for ax in (0, 1)]
    hist = np.histogram(a.mean(-1), bins=8, range=(0, 1))[0] / lum.size
    return np.concatenate([flat.mean(0), flat.std(0), corr, *grads, auto, hist])


def music_statistics(item: dict) -> np.ndarray:
    """Per bar its pitch classes (by duration), per voice and beat its pitch and its onsets."""
    bars = item["bars"]
    beats = bars * 4
    chroma = np.zeros((bars, 12))
    contour = np.zeros((4, beats))
    onsets = np.zeros((4, beats))
    for track, pitch, _velocity, start, length in item["notes"]:
        for beat in range(int(start), min(beats, max(int(start) + 1, int(np.ceil(start + length))))):
            contour[track, beat] = pitch / 12.0
        onsets[track, min(int(start), beats - 1)] += 1
        chroma[min(int(start // 4), bars - 1), pitch % 12] += length
    chroma /= chroma.sum(1, keepdims=True) + 1e-9
    return np.concatenate([chroma.ravel(), contour.ravel(), onsets.ravel()])


FEATURES: dict[str, Callable[[dict], np.ndarray]] = {
    "pixels": image_pixels,
    "texture-pixels": texture_pixels,
    "patch-statistics": texture_statistics,
    "piano-roll": music_statistics,
}
TASKS = {
    "texture": [
        Task("texture", {"width": 128, "height": 128, "model": "brick"}, "texture-pixels"),
        Task("texture", {"width": 128, "height": 128, "model": "brick"}, "patch-statistics"),
    ],
    "image": [Task("image", {"size": 64}, "pixels")],
    "music": [Task("music", {"bars": 4}, "piano-roll")],
}


class Features:
    """A feature centred on a reference set and scaled to its overall spread."""

    def __init__(self, name: str, reference: list[dict]):
        self.fn = FEATURES[name]
        ref = np.stack([self.fn(item) for item in reference])
        self.mean = ref.mean(0)
        self.scale = ref.std(0) + ref.std(0).mean() + 1e-9  # per column, floored by the average

    def __call__(self, item: dict) -> np.ndarray:
        return (self.fn(item) - self.mean) / self.scale


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))


def variety(items: list[dict], groups: list[int], feature: str, targets: int = 32, pool: int = 80) -> float:
    """How alike a source's items are: for each of `targets` items, the best cosine among `pool`
    others drawn at random, never of its own group (its request's batch, or its piece), with the
    features centred on the first 64. A source's own "random, best of 80": lower is more varied.
    A smoother latent is easy to find in when it has lost its variety; this says which."""
    rng = np.random.default_rng(0)
    centred = Features(feature, items[:64])
    f = [centred(item) for item in items]
    best = []
    for t in range(min(targets, len(items))):
        others = [j for j in range(len(items)) if groups[j] != groups[t]]
        picked = rng.choice(others, size=min(pool, len(others)), replace=False)
        best.append(max(cosine(f[t], f[j]) for j in picked))
    return float(np.mean(best))


def bach_phrases() -> tuple[list[dict], list[int]] | None:
    """The shipped music model's held-out Bach phrases as items (notes in the protocol's form),
    grouped by piece; None without music21's corpus."""
    try:
        from ganbridge.generators.music.data import load_music_data, phrases
        from ganbridge.generators.music.notes import note_list

        held_out = load_music_data("bach", None).held_out
    except (ImportError, OSError, ValueError):
        return None
    items, groups = [], []
    for k, piece in enumerate(held_out):
        for phrase in phrases([piece], 4):
            items.append({"bars": 4, "notes": note_list(phrase, [0, 1, 2, 3])})
            groups.append(k)
    order = np.random.default_rng(1).permutation(len(items))  # the first 64 (the centre) from every piece
    return [items[i] for i in order], [groups[i] for i in order]


async def music_variety(client: Client, task: Task) -> dict:
    """The generator's variety next to that of the data it learnt from (held-out Bach)."""
    items: list[dict] = []
    for r in range(20):  # 160 phrases in requests of 8, seeds never shared
        gen = {"type": "generate", "generator": task.generator, "params": task.params, "count": 8}
        items += (await client.items(gen | {"seed": 7_000_000 + 8 * r}))[0]
    out = {"generated": round(variety(items, [i // 8 for i in range(len(items))], task.feature), 3)}
    real = bach_phrases()
    if real is not None:
        out["held_out_bach"] = round(variety(*real, task.feature), 3)
    return out


class Client:
    """One WebSocket connection's requests, one at a time."""

    def __init__(self, ws: ClientConnection):
        self.ws = ws
        self.ids = itertools.count()

    async def items(self, msg: dict) -> tuple[list[dict], dict]:
        """Send a generating request; its items and its `done`."""
        rid = f"r{next(self.ids)}"
        await self.ws.send(json.dumps(msg | {"id": rid}))
        items: list[dict] = []
        while True:
            reply = json.loads(await self.ws.recv())
            if reply.get("id") != rid:
                continue
            if reply["type"] == "result":
                items += reply["items"]
            elif reply["type"] == "done":
                return items, reply
            elif reply["type"] in ("error", "cancelled"):
                raise RuntimeError(f"bridge said {reply}")

    async def rate(self, item: str, rating: int, session: str) -> None:
        rid = f"f{next(self.ids)}"
        await self.ws.send(
            json.dumps({"type": "feedback", "id": rid, "item": item, "rating": rating, "session": session})
        )
        while (reply := json.loads(await self.ws.recv())).get("id") != rid:
            pass
        if reply["type"] != "ack":
            raise RuntimeError(f"bridge said {reply}")


async def trial(
    client: Client,
    task: Task,
    feature: Features,
    target: np.ndarray,
    strategy: str,
    seed: int,
    rounds: int,
    per_round: int,
) -> float:
    session = f"bench-{task.generator}-{task.feature}-{strategy}-{seed}"  # one per trial
    gen = {"type": "generate", "generator": task.generator, "params": task.params, "count": per_round}
    batch, _ = await client.items(gen | {"seed": seed, "session": session})
    best, best_item = -2.0, batch[0]
    for r in range(rounds):
        scores = [cosine(feature(item), target) for item in batch]
        if max(scores) > best:
            best, best_item = max(scores), batch[int(np.argmax(scores))]
        if r == rounds - 1:
            break
        order = np.argsort(scores)
        # A request of n items with seed s draws seeds s..s+n-1: each round gets a block of its
        # own, so no round repeats an earlier one's items (seeds one apart would share n-1).
        block = ((seed * rounds) + r + 1) * per_round
        if strategy == "steer":
            for i in order[-2:]:
                await client.rate(batch[i]["item"], 1, session)
            for i in order[:2]:
                await client.rate(batch[i]["item"], -1, session)
            steer = {"type": "steer", "generator": task.generator, "session": session, "count": per_round}
            batch, _ = await client.items(steer | {"seed": 3_000_000 + block})
        elif strategy == "variations":
            var = {"type": "variations", "item": best_item["item"], "strength": 0.3, "count": per_round}
            batch, _ = await client.items(var | {"seed": 2_000_000 + block})
        else:
            batch, _ = await client.items(gen | {"seed": 1_000_000 + block})
    return best


async def steering_figures(url: str, tasks: list[Task], targets: int, rounds: int = 10, per_round: int = 8) -> dict:
    """{task label: {strategy: mean best cosine, ..., "gap_closed": ...}} over `targets` seeded targets."""
    out: dict = {}
    async with connect(url, compression=None, max_size=None) as ws:
        client = Client(ws)
        for task in tasks:
            reference = []
            for r in range(8):  # 64 items, in requests within the default count limit
                ref = {"type": "generate", "generator": task.generator, "params": task.params, "count": 8}
                reference += (await client.items(ref | {"seed": 90_000 + 8 * r}))[0]
            feature = Features(task.feature, reference)
            best: dict[str, list[float]] = {s: [] for s in STRATEGIES}
            near: dict[float, list[float]] = {s: [] for s in NEAR_STRENGTHS}
            for t in range(targets):
                gen = {"type": "generate", "generator": task.generator, "params": task.params}
                target_item = (await client.items(gen | {"seed": 50_000 + t}))[0][0]
                target = feature(target_item)
                for strength in NEAR_STRENGTHS:
                    var = {"type": "variations", "item": target_item["item"], "strength": strength, "count": 4}
                    nearby = (await client.items(var | {"seed": 70_000 + t}))[0]
                    near[strength] += [cosine(feature(item), target) for item in nearby]
                for strategy in STRATEGIES:
                    best[strategy].append(
                        await trial(client, task, feature, target, strategy, 1000 + t, rounds, per_round)
                    )
            row: dict[str, Any] = {s: round(statistics.mean(v), 3) for s, v in best.items()}
            row["gap_closed"] = round((row["steer"] - row["random"]) / (1 - row["random"]), 3)
            row["near_target"] = {str(s): round(statistics.mean(v), 3) for s, v in near.items()}
            row["targets"] = targets
            if task.generator == "music":
                row["variety"] = await music_variety(client, task)
            out[f"{task.generator} ({task.feature})"] = row
    return out


def steering_overhead(runs: int = 30) -> dict:
    """Milliseconds steering adds to a request with 64 ratings in its session, as in a session
    that goes on: before each timed steer a new batch of 8 is stored and half of it rated (the
    session keeps its latest 64 ratings and their batch mates, 128 items). Timed: finding those
    items in a real store, the fit and drawing 8 latents, for a 512x512 texture (the largest
    latent of the defaults), a glyph and a piece whose rated items differ in density (so its
    controls are read and steered too); medians over `runs`, beside drawing 8 random latents of
    the same shapes (what a request without steering does instead)."""
    import tempfile
    from pathlib import Path

    from ganbridge.core.registry import load_generators
    from ganbridge.core.service import BridgeCore
    from ganbridge.core.settings import Settings
    from ganbridge.core.store import ItemStore

    gens = load_generators(None)
    figures = {}
    with tempfile.TemporaryDirectory() as tmp:
        store = ItemStore(Path(tmp) / "items.db", Path(tmp) / "out")
        core = BridgeCore(Settings(), gens, store, scheduler=None)  # type: ignore[arg-type]  # planning needs no scheduler
        for name, params, varied in (
            ("texture", {"width": 512, "height": 512}, None),
            ("image", {}, None),
            ("music", {"bars": 4}, "density"),
        ):
            figures[name] = _overhead_of(core, name, params, runs, varied)
        store.close()
    return figures


def _overhead_of(core: BridgeCore, name: str, params: dict, runs: int, varied: str | None = None) -> dict:
    import time

    from ganbridge.core.protocol import Steer
    from ganbridge.generators.base import draw_latent, seeded_rng

    gen = core.generators[name]
    p = gen.params_model.model_validate(params)
    session = f"overhead-{name}"
    # A model with a gallery steers by its items' looks, so its batches are rendered, all before
    # the timing: torch's threads spin on for a while after a forward pass, and would be timed too.
    batches = [_rated_batch(core, name, p, session, b, varied) for b in range(16 + runs)]
    for records in batches[:16]:
        _store(core, records, session)
    msg = Steer.model_validate({"type": "steer", "id": "x", "generator": name, "session": session, "count": 8})
    plan, drawn_last = core.steered(gen, msg, 0)  # the session's previous steer
    steered, drawn = [], []
    shapes = gen.latent_shapes(p)
    for run in range(runs):
        _store(core, batches[16 + run], session)
        t0 = time.perf_counter()
        plan, drawn_last = core.steered(gen, msg, run)
        t1 = time.perf_counter()
        rng = seeded_rng(run)
        for _ in range(8):
            draw_latent(shapes, rng)
        t2 = time.perf_counter()
        steered.append(t1 - t0)
        drawn.append(t2 - t1)
    return {
        "ratings": plan.summary()["steering"]["ratings_used"],
        "gallery": plan.summary(drawn_last)["steering"]["gallery"],
        "items": len(plan.items),
        "controls": plan.summary(drawn_last)["steering"]["controls"],
        "median_ms": round(1000 * statistics.median(steered), 2),
        "random_ms": round(1000 * statistics.median(drawn), 2),
    }


def _rated_batch(
    core: BridgeCore, name: str, params: BaseModel, session: str, batch: int, varied: str | None = None
) -> list[ItemRecord]:
    """A batch of 8 random items of `name` (with their looks, for a model with a gallery), each
    with its own value of the control `varied` when one is named."""
    import time
    from pathlib import Path

    from ganbridge.core.store import ItemRecord

    gen = core.generators[name]
    ref = gen.checkpoint_for(params)
    latents = [gen.random_latent(params, batch * 8 + i) for i in range(8)]
    each = [params] * 8
    if varied is not None:
        control = gen.steered_controls(params)[varied]
        values = np.random.default_rng(batch).uniform(control.low, control.high, 8)
        each = [params.model_copy(update={varied: round(float(v), 3)}) for v in values]
    looks = [out.look for out in gen.render(each, latents)] if gen.gallery(params) else [None] * 8
    records = [
        ItemRecord(
            f"{name}{batch}-{i}",
            name,
            ref.name,
            ref.sha256,
            None,
            latents[i],
            each[i].model_dump(mode="json"),
            "png",
            Path("unused.png"),
            session,
            "generate",
            [],
            time.time(),
            batch=f"{name}-b{batch}",
            look=looks[i],
        )
        for i in range(8)
    ]
    return records


def _store(core: BridgeCore, records: list[ItemRecord], session: str) -> None:
    """A batch into the core's store, its first 2 items liked and the next 2 disliked."""
    core.store.add(records)
    for i, rating in enumerate((1, 1, -1, -1)):
        core.store.add_feedback(records[i].id, session, rating)


def print_steering(figures: dict) -> None:
    print("steering, simulated users (mean best cosine to a hidden target):")
    for label, row in figures.get("steering", {}).items():
        print(
            f"  {label:32s} steer {row['steer']:.3f}  variations {row['variations']:.3f}  random {row['random']:.3f}"
            f"  gap closed {row['gap_closed']:.2f}  ({row['targets']} targets)"
        )
        near = ", ".join(f"{s}: {c:.3f}" for s, c in row["near_target"].items())
        print(f"  {'':32s} the target's own variations, by strength: {near}")
        if "variety" in row:
            v = row["variety"]
            print(
                f"  {'':32s} variety, best of 80 among its own phrases (lower: more varied): "
                f"generated {v['generated']:.3f}"
                + (f", held-out Bach {v['held_out_bach']:.3f}" if "held_out_bach" in v else "")
            )
    for name, row in figures.get("steering_overhead", {}).items():
        print(
            f"  steering overhead, {name}{' (gallery)' if row.get('gallery') else ''}: {row['median_ms']} ms with "
            f"{row['ratings']} ratings ({row['items']} items)"
            + (f", steering {', '.join(row['controls'])} too" if row.get("controls") else "")
            + ";"
            f" drawing as many random latents: {row['random_ms']} ms"
        )


def run_steering(args, device: str) -> dict:
    from ganbridge.bench.common import BridgeProcess

    async def served() -> dict:
        bridge = BridgeProcess(device, True)
        try:
            await bridge.wait_ready()
            return await steering_figures(bridge.url, [t for kind in TASKS for t in TASKS[kind]], args.targets)
        finally:
            bridge.close()

    figures = {"steering": asyncio.run(served()), "steering_overhead": steering_overhead()}
    print_steering(figures)
    return figures
