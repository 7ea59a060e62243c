"""Protocol v1 over a real WebSocket: every message type and every error code."""

from __future__ import annotations

import base64
import io
import json
import time
from pathlib import Path

import pytest
from PIL import Image

from ganbridge.core.protocol import ErrorCode, protocol_schema
from tests.conftest import content, small_texture


def png_size(item: dict) -> tuple[int, int]:
    return Image.open(io.BytesIO(base64.b64decode(item["data"]))).size


def generate(ws, rid: str, count: int = 1, **params) -> list[dict]:
    ws.send({"type": "generate", "id": rid, "generator": "texture", "count": count, "params": small_texture(**params)})
    return ws.until_final(rid)


def items_of(msgs: list[dict]) -> list[dict]:
    return [item for m in msgs if m["type"] == "result" for item in m["items"]]


def test_hello_welcome_lists_generators_with_schema(ws):
    reply = ws.request({"type": "hello", "protocol": 1, "client": "pytest"})
    assert reply["type"] == "welcome" and reply["protocol"] == 1
    assert reply["server"].startswith("ganbridge ")
    (tex,) = [g for g in reply["generators"] if g["name"] == "texture"]
    assert tex["kind"] == "texture" and tex["outputs"] == ["png"] and len(tex["checkpoint"]["sha256"]) == 64
    width = tex["params_schema"]["properties"]["width"]
    assert width["minimum"] == 32 and width["maximum"] == 2048 and "multipleOf" not in width  # any size
    assert (
        "enum" in tex["params_schema"]["properties"]["model"] or "const" in tex["params_schema"]["properties"]["model"]
    )


def test_generators_message(ws):
    reply = ws.request({"type": "generators", "id": "g1"})
    assert reply == {"type": "generators", "id": "g1", "generators": reply["generators"]}
    assert [g["name"] for g in reply["generators"]] == ["texture", "image", "music"]


def test_generate_accepted_progress_result_done(ws):
    msgs = generate(ws, "gen1", count=2, width=96, height=64, maps=["height", "normal"])
    kinds = [m["type"] for m in msgs]
    assert kinds[0] == "accepted" and kinds[-1] == "done"
    assert kinds.count("progress") >= 1 and msgs[kinds.index("progress")]["total"] == 2
    items = items_of(msgs)
    assert len(items) == 2
    for item in items:
        assert item["format"] == "png" and item["mime"] == "image/png"
        assert (item["width"], item["height"]) == (96, 64) and png_size(item) == (96, 64)
        assert set(item["maps"]) == {"height", "normal"}
    assert items[1]["seed"] == items[0]["seed"] + 1


def test_same_seed_same_image_different_seed_different(ws):
    ws.send({"type": "generate", "id": "x", "generator": "texture", "seed": 5, "params": small_texture()})
    a = items_of(ws.until_final("x"))
    b = items_of(generate(ws, "y", seed=5))  # the seed may also come inside params
    c = items_of(generate(ws, "z", seed=6))
    assert content(a[0]["data"]) == content(b[0]["data"]) and a[0]["item"] != b[0]["item"]
    assert content(c[0]["data"]) != content(a[0]["data"])


def pixels(item: dict) -> bytes:
    return Image.open(io.BytesIO(base64.b64decode(item["data"]))).tobytes()


def test_variations_interpolate_item_feedback_steer(ws):
    base = items_of(generate(ws, "base", count=2))
    first, second = base[0]["item"], base[1]["item"]

    ws.send({"type": "variations", "id": "v", "item": first, "strength": 0.2, "count": 3})
    var = ws.until_final("v")
    variations = items_of(var)
    assert var[-1]["type"] == "done" and len(variations) == 3
    assert len({v["data"] for v in variations}) == 3

    ws.send({"type": "interpolate", "id": "i", "from": first, "to": second, "steps": 4})
    interp = items_of(ws.until_final("i"))
    assert len(interp) == 4
    # the endpoints of a spherical interpolation are the two items themselves (the same pixels;
    # the files differ in the recipe they carry)
    assert pixels(interp[0]) == pixels(base[0]) and pixels(interp[-1]) == pixels(base[1])

    info = ws.request({"type": "item", "id": "it", "item": variations[0]["item"]})
    assert info["type"] == "item" and info["origin"] == "variations" and info["parents"] == [first]
    assert "data" not in info and info["params"]["width"] == 64

    assert ws.request({"type": "feedback", "id": "f1", "item": first, "rating": 1, "session": "s1"}) == {
        "type": "ack",
        "id": "f1",
    }
    assert ws.request({"type": "feedback", "id": "f2", "item": second, "rating": -1, "session": "s1"})["type"] == "ack"
    rated = ws.request({"type": "item", "id": "it2", "item": first})
    assert rated["rating"] == 1 and rated["ratings"] == {"s1": 1}

    ws.send({"type": "steer", "id": "st", "generator": "texture", "session": "s1", "count": 4})
    steered = ws.until_final("st")
    assert steered[-1]["type"] == "done" and len(items_of(steered)) == 4
    assert steered[-1]["steering"]["ratings_used"] == 2 and steered[-1]["steering"]["batches"] == 1
    assert all(i["how"] == "near" and i["parents"] == [first] for i in items_of(steered))
    sinfo = ws.request({"type": "item", "id": "it3", "item": items_of(steered)[0]["item"]})
    assert sinfo["origin"] == "steer" and sinfo["parents"] == [first] and sinfo["params"]["width"] == 64
    assert sinfo["how"] == "near" and sinfo["session"] == "s1" and sinfo["rating"] is None


def test_steer_answers_every_odd_session_with_a_batch_and_says_why_it_is_random(ws):
    def steer(rid: str, session: str, **extra) -> list[dict]:
        ws.send({"type": "steer", "id": rid, "generator": "texture", "session": session, "count": 2, **extra})
        msgs = ws.until_final(rid)
        assert msgs[-1]["type"] == "done" and len(items_of(msgs)) == 2, msgs
        return msgs

    # a session nobody has used
    unknown = steer("st-unknown", "no-such-session", params=small_texture())
    assert unknown[-1]["steering"]["ratings_used"] == 0 and "no ratings" in unknown[-1]["steering"]["note"]
    assert {i["how"] for i in items_of(unknown)} == {"random"}
    # ratings of another model (brick) when the request asks for gravel: used for neither
    base = items_of(generate(ws, "odd-base", count=2, model="brick"))
    assert len(base) == 2
    for n, (item, rating) in enumerate(zip(base, (1, -1))):
        ws.request({"type": "feedback", "id": f"odd-f{n}", "item": item["item"], "rating": rating, "session": "odd"})
    other = steer("st-other", "odd", params={"model": "gravel"})[-1]["steering"]
    assert other["model"] == "gravel" and other["ratings_used"] == 0 and other["ratings_ignored"] == 2
    assert "other models or sizes" in other["note"]
    # only dislikes: still a normal batch, drawn using both
    ws.request({"type": "feedback", "id": "odd-f2", "item": base[0]["item"], "rating": -1, "session": "odd"})
    disliked = steer("st-dislikes", "odd")
    assert disliked[-1]["steering"]["ratings_used"] == 2 and "note" not in disliked[-1]["steering"]


def test_steering_glyphs_picks_from_their_gallery_unless_the_category_is_fixed(ws):
    def batch(msg: dict) -> tuple[list[dict], dict]:
        ws.send(msg)
        msgs = ws.until_final(msg["id"])
        assert msgs[-1]["type"] == "done", msgs
        return items_of(msgs), msgs[-1]

    shown, _ = batch({"type": "generate", "id": "g-gal", "generator": "image", "count": 4, "session": "gal"})
    for n, (item, rating) in enumerate(zip(shown, (1, 0, 0, -1))):
        if rating:
            ws.request(
                {"type": "feedback", "id": f"gal-f{n}", "item": item["item"], "rating": rating, "session": "gal"}
            )
    steered, done = batch({"type": "steer", "id": "st-gal", "generator": "image", "session": "gal", "count": 4})
    assert done["steering"]["gallery"] is True and done["steering"]["ratings_used"] == 2
    assert all(i["how"] == "gallery" and i["parents"] == [] for i in steered) and len(steered) == 4
    assert not {pixels(i) for i in steered} & {pixels(i) for i in shown}  # new items, none of the shown again
    info = ws.request({"type": "item", "id": "gal-it", "item": steered[0]["item"]})
    assert info["origin"] == "steer" and info["how"] == "gallery" and info["parents"] == []
    # a fixed category draws no character from the latent: the gallery's items would not look as
    # stored, so the batch is latent steps
    params = {"category": shown[0]["category"]}
    fixed, done = batch({"type": "steer", "id": "st-cat", "generator": "image", "session": "gal", "params": params})
    assert done["steering"]["gallery"] is False and {i["how"] for i in fixed} == {"near"}


def test_steering_music_moves_the_controls_its_ratings_vary_unless_the_request_gives_them(ws):
    def batch(rid: str, kind: str, **fields) -> tuple[list[dict], dict]:
        ws.send({"type": kind, "id": rid, "generator": "music", "session": "ctl", **fields})
        msgs = ws.until_final(rid)
        assert msgs[-1]["type"] == "done", msgs
        return items_of(msgs), msgs[-1]

    def params(item: dict) -> dict:
        return ws.request({"type": "item", "id": f"ctl-it-{item['item']}", "item": item["item"]})["params"]

    # the artist likes the dense, excited pieces of one batch and dislikes the sparse, calm ones
    # of another; temperature they never changed
    liked, _ = batch("ctl-dense", "generate", count=2, seed=5, params={"bars": 2, "density": 0.75, "arousal": 0.6})
    disliked, _ = batch("ctl-sparse", "generate", count=2, seed=9, params={"bars": 2, "density": 0.25, "arousal": -0.6})
    for n, (item, rating) in enumerate([(i, 1) for i in liked] + [(i, -1) for i in disliked]):
        ws.request({"type": "feedback", "id": f"ctl-f{n}", "item": item["item"], "rating": rating, "session": "ctl"})
    steered, done = batch("ctl-steer", "steer", count=6)
    assert done["steering"]["controls"] == ["density", "arousal"]
    values = [params(i) for i in steered]
    densities, arousals = [v["density"] for v in values], [v["arousal"] for v in values]
    assert min(densities) >= 0.2 and max(densities) <= 0.8 and sum(densities) / 6 > 0.6, densities
    assert len(set(densities)) > 1 and sum(arousals) / 6 > 0.3, arousals  # each its own, near the liked
    assert all(v["temperature"] == 1.0 for v in values)  # shared by every rated item: left alone
    assert {i["parents"][0] for i in steered} <= {i["item"] for i in liked}  # the params' parent, by name
    # a control the request gives stays as given; a mood fixes arousal
    fixed, done = batch("ctl-fixed", "steer", count=3, params={"density": 0.3, "mood": "calm"})
    assert done["steering"]["controls"] == []
    # (a mood asked for replaces the liked item's own valence and arousal)
    assert all(params(i)["density"] == 0.3 and params(i)["arousal"] is None for i in fixed)
    assert all(params(i)["mood"] == "calm" for i in fixed)
    dense, done = batch("ctl-dense-fixed", "steer", count=3, params={"density": 0.7})
    assert done["steering"]["controls"] == ["arousal"] and all(params(i)["density"] == 0.7 for i in dense)


def test_cancel_reply_and_unknown_request(ws):
    ws.send(
        {"type": "generate", "id": "long", "generator": "texture", "count": 16, "params": {"width": 512, "height": 512}}
    )
    assert ws.recv()["type"] == "accepted"
    assert ws.request({"type": "cancel", "id": "long"}) == {"type": "cancelled", "id": "long"}
    err = ws.request({"type": "cancel", "id": "long"})
    assert err["type"] == "error" and err["code"] == "unknown_request"


def error_for(ws, msg) -> dict:
    reply = ws.request(msg)
    assert reply["type"] == "error", reply
    return reply


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("{not json", "bad_message"),
        ("[1, 2]", "bad_message"),
        ('"hello"', "bad_message"),
        ('{"id": "a"}', "bad_message"),
        ('{"type": "paint", "id": "a"}', "unknown_type"),
        ('{"type": "generate", "id": "a", "generator": "nope"}', "unknown_generator"),
        ('{"type": "item", "id": "a", "item": "missing"}', "unknown_item"),
        ('{"type": "feedback", "id": "a", "item": "missing", "rating": 1}', "unknown_item"),
        ('{"type": "variations", "id": "a", "item": "missing"}', "unknown_item"),
        ('{"type": "interpolate", "id": "a", "from": "x", "to": "y"}', "unknown_item"),
        ('{"type": "feedback", "id": "a", "item": "x", "rating": 7}', "invalid_params"),
        ('{"type": "generate", "generator": "texture"}', "invalid_params"),
        ('{"type": "generate", "id": "a", "generator": "texture", "count": 999}', "too_large"),
        ('{"type": "interpolate", "id": "a", "from": "x", "to": "y", "steps": 999}', "too_large"),
        ('{"type": "cancel", "id": "never-sent"}', "unknown_request"),
        ("[" * 100_000, "bad_message"),
    ],
)
def test_error_codes_keep_connection_open(ws, raw, code):
    reply = error_for(ws, raw)
    assert reply["code"] == code and reply["message"]
    assert ws.request({"type": "generators", "id": "still-open"})["type"] == "generators"


def test_invalid_params_carry_field_paths(ws):
    reply = error_for(
        ws,
        {
            "type": "generate",
            "id": "p",
            "generator": "texture",
            "params": {"width": "wide", "height": 4096, "tileable": "perhaps"},
        },
    )
    assert reply["code"] == "invalid_params" and reply["id"] == "p"
    paths = {d["path"] for d in reply["details"]}
    assert {"params.width", "params.height", "params.tileable"} <= paths
    reply = error_for(ws, {"type": "generate", "id": "p2", "generator": "texture", "params": {"width": 20}})
    assert (
        reply["details"][0]["path"] == "params.width"
        and "greater than or equal to 32" in reply["details"][0]["message"]
    )
    reply = error_for(ws, {"type": "generate", "id": "p3", "generator": "texture", "params": {"colour": "red"}})
    assert reply["details"][0]["path"] == "params.colour"
    reply = error_for(ws, {"type": "generate", "id": "p4", "generator": "texture", "params": {"tint": "red"}})
    # a validator's own sentence, without pydantic's "Value error, " before it
    assert reply["details"] == [
        {"path": "params.tint", "message": "a tint is a colour as #rrggbb, such as #a0522d, not 'red'"}
    ]


def test_too_large_frame_gets_error_not_disconnect(ws, bridge):
    limit = bridge.settings.max_message_bytes
    reply = error_for(ws, json.dumps({"type": "generators", "id": "big", "pad": "x" * (limit + 10)}))
    assert reply["code"] == "too_large"
    assert ws.request({"type": "generators", "id": "after"})["type"] == "generators"


def test_interpolate_across_sizes_is_invalid(ws):
    a = items_of(generate(ws, "a64"))[0]["item"]
    b = items_of(generate(ws, "b96", width=96))[0]["item"]
    reply = error_for(ws, {"type": "interpolate", "id": "bad", "from": a, "to": b, "steps": 3})
    assert reply["code"] == "invalid_params" and "different params" in reply["message"]


def test_duplicate_request_id_in_flight_is_refused(ws):
    ws.send(
        {"type": "generate", "id": "dup", "generator": "texture", "count": 8, "params": {"width": 256, "height": 256}}
    )
    assert ws.recv()["type"] == "accepted"
    reply = ws.request({"type": "generate", "id": "dup", "generator": "texture", "params": small_texture()})
    assert reply["type"] == "error" and reply["code"] == "invalid_params"
    ws.request({"type": "cancel", "id": "dup"})


def test_schema_covers_every_message_and_code():
    schema = protocol_schema()
    assert set(schema["error_codes"]) == {c.value for c in ErrorCode}
    assert {
        "Hello",
        "Generate",
        "Variations",
        "Interpolate",
        "Feedback",
        "Steer",
        "Cancel",
        "GetItem",
        "ListGenerators",
    } <= set(schema["requests"])
    assert {"Welcome", "Accepted", "Progress", "Result", "Done", "Error", "Ack", "Cancelled", "ItemReply"} <= set(
        schema["replies"]
    )
    assert "from" in schema["requests"]["Interpolate"]["properties"]


def test_disconnect_mid_job_cancels_over_websocket(bridge):
    client = bridge.client()
    client.send({"type": "hello", "protocol": 1, "client": "leaver"})
    assert client.recv()["type"] == "welcome"
    client.send(
        {"type": "generate", "id": "bye", "generator": "texture", "count": 16, "params": {"width": 512, "height": 512}}
    )
    assert client.recv()["type"] == "accepted"
    client.close()
    scheduler = bridge.core.scheduler
    deadline = time.monotonic() + 10
    while any(job.request_id == "bye" for job in list(scheduler._active.values())) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(job.request_id == "bye" for job in list(scheduler._active.values()))
    assert scheduler.queued == 0


def test_busy_and_internal_over_websocket(ws, bridge):
    from tests.core.test_scheduler import ExplodingGenerator

    core = bridge.core
    core.generators["exploding"] = ExplodingGenerator(core.generators["texture"], RuntimeError("out of memory"))
    try:
        ws.send({"type": "generate", "id": "boom", "generator": "exploding", "params": small_texture()})
        reply = ws.until_final("boom")
        assert reply[-1]["code"] == "internal" and "out of memory" in reply[-1]["message"]
    finally:
        del core.generators["exploding"]
    limit = bridge.settings.max_queue
    big = {"width": 512, "height": 512}
    ids = [f"fill{n}" for n in range(limit // 16)]
    for rid in ids:
        ws.send({"type": "generate", "id": rid, "generator": "texture", "count": 16, "params": big})
    ws.send({"type": "generate", "id": "overflow", "generator": "texture", "count": 16, "params": big})
    busy = ws.until_final("overflow")
    assert busy[-1]["type"] == "error" and busy[-1]["code"] == "busy"
    for rid in ids:
        ws.send({"type": "cancel", "id": rid})
    for rid in ids:
        assert ws.until_final(rid)[-1]["type"] == "cancelled"


def test_an_error_reply_stays_small_whatever_the_request(ws):
    """60,000 unknown keys (1 MB) once gave a 4.3 MB error; now 20 details and a count."""
    params = {f"k{i}": i for i in range(60_000)}
    msg = json.dumps({"type": "generate", "id": "keys", "generator": "texture", "params": params})
    assert len(msg) < 1 << 20
    ws.send(msg)
    raw = ws.ws.recv(timeout=60)
    reply = json.loads(raw)
    assert reply["code"] == "invalid_params" and len(raw) < 4096
    assert len(reply["details"]) == 21 and reply["details"][-1] == {
        "path": "(more)",
        "message": "59980 more error(s) left out",
    }
    ws.send({"type": "x" * 100_000, "id": "long"})
    reply = ws.recv()
    assert reply["code"] == "unknown_type" and len(reply["message"]) < 1000


def test_item_names_the_training_data_and_sends_the_stored_files_when_asked(ws, tmp_path):
    from ganbridge.core.credentials import check
    from ganbridge.core.provenance import read_recipe

    welcome = ws.request({"type": "hello", "protocol": 1, "client": "pytest"})
    (tex,) = [g for g in welcome["generators"] if g["name"] == "texture"]
    brick = next(c for c in tex["checkpoints"] if c["name"] == "brick")
    assert "CC0" in brick["data"]["license"] and brick["data"]["source"]
    from ganbridge.generators.checkpoint import read_card

    card = read_card(Path(__file__).parents[2] / "generators" / "weights" / "texture" / "brick.safetensors")
    assert brick["data_sha256"] == card["data"]["manifest"]["sha256"]  # the recipe points at the card's manifest
    made = items_of(generate(ws, "fd", maps=["height"]))[0]
    info = ws.request({"type": "item", "id": "fd1", "item": made["item"], "data": True})
    assert info["checkpoint"] == brick and info["data"] == made["data"]
    assert info["maps"] == {"height": made["maps"]["height"]["data"]}
    stored = base64.b64decode(info["data"])
    assert read_recipe(stored)["checkpoint"] == {k: v for k, v in brick.items() if k != "data"}
    assert check(stored, "png").unchanged

    ws.send({"type": "generate", "id": "fm", "generator": "music", "params": {"bars": 1}, "seed": 2})
    song = items_of(ws.until_final("fm"))[0]
    info = ws.request({"type": "item", "id": "fd2", "item": song["item"], "data": True})
    assert check(base64.b64decode(info["data"]), "mid", base64.b64decode(info["sidecar"])).unchanged

    Path(made["file"]).unlink()  # the output folder was cleaned: a clear error, the recipe still answers
    gone = ws.request({"type": "item", "id": "fd3", "item": made["item"], "data": True})
    assert gone["type"] == "error" and gone["code"] == "unknown_item" and "cannot be read" in gone["message"]
    assert ws.request({"type": "item", "id": "fd4", "item": made["item"]})["type"] == "item"


def test_an_id_can_be_reused_as_soon_as_its_done_arrives(ws):
    """A request's id is free again once its final message is out: a client that numbers its
    requests with one id, sending the next right after each `done`, never hears "in progress"."""
    for seed in range(25):
        msgs = generate(ws, "again", seed=seed, width=32, height=32)
        assert msgs[-1]["type"] == "done", msgs[-1]
