"""The item store survives a restart, and recipes regenerate identical images."""

from __future__ import annotations

import base64
import sqlite3

from ganbridge.core.provenance import embed, make_recipe, without_credentials
from ganbridge.server import build_core
from tests.conftest import content, make_settings
from tests.core.test_scheduler import Inbox


def test_items_and_feedback_survive_restart_and_regenerate(tmp_path):
    settings = make_settings(tmp_path)
    core = build_core(settings)
    inbox = Inbox()
    client = core.connect(inbox.emit)
    core.handle(
        client,
        {
            "type": "generate",
            "id": "g",
            "generator": "texture",
            "count": 2,
            "params": {"width": 96, "height": 64, "temperature": 0.8},
            "session": "s",
        },
    )
    items = [i for m in inbox.until_final("g") if m["type"] == "result" for i in m["items"]]
    core.handle(client, {"type": "variations", "id": "v", "item": items[0]["item"], "count": 1})
    variation = next(i for m in inbox.until_final("v") if m["type"] == "result" for i in m["items"])
    core.handle(client, {"type": "feedback", "id": "f", "item": items[0]["item"], "rating": 1})
    assert inbox.until_final("f") == [{"type": "ack", "id": "f"}]
    # acknowledged means committed: another connection sees it before any shutdown
    other = sqlite3.connect(settings.db_path)
    assert other.execute("SELECT rating, session FROM feedback").fetchall() == [(1, "s")]
    other.close()
    core.scheduler.stop()
    core.store.close()

    core = build_core(settings)  # a restarted bridge on the same folders
    try:
        gen = core.generators["texture"]
        for original in (items[0], variation):
            rec = core.store.get(original["item"])
            assert rec is not None and rec.file.read_bytes() == base64.b64decode(original["data"])
            assert rec.checkpoint_sha256 == gen.checkpoint_for(gen.params_model.model_validate(rec.params)).sha256
            params = gen.params_model.model_validate(rec.params)
            again = gen.render([params], [rec.latent])[0]
            recipe = make_recipe(gen.name, gen.checkpoint_for(params).as_dict(),  # its sha256 checked above
                                 rec.params, rec.seed, rec.latent, rec.origin, rec.parents)  # fmt: skip
            remade = embed(again.data, again.format, recipe)
            assert remade == without_credentials(rec.file.read_bytes()), (
                "the stored recipe must regenerate the identical image"
            )
        assert core.store.latest_rating(items[0]["item"]) == 1
        assert core.store.counts() == {"items": 3, "feedback": 1}
        # a seeded item's params alone regenerate it too (the seed is in the params)
        inbox = Inbox()
        client = core.connect(inbox.emit)
        rec = core.store.get(items[1]["item"])
        core.handle(client, {"type": "generate", "id": "again", "generator": "texture", "params": rec.params})
        regen = next(i for m in inbox.until_final("again") if m["type"] == "result" for i in m["items"])
        assert content(regen["data"]) == content(items[1]["data"])
        assert core.store.get(variation["item"]).parents == [items[0]["item"]]
    finally:
        core.scheduler.stop()
        core.store.close()


def test_store_uses_wal_and_keeps_files_inside_output_folder(tmp_path):
    from ganbridge.core.store import ItemStore

    store = ItemStore(tmp_path / "db.sqlite3", tmp_path / "out")
    assert store._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    try:
        store.output_path("../../etc", "x", "png")
        raise AssertionError("a path outside the output folder must be refused")
    except ValueError as e:
        assert "outside the output folder" in str(e)
    store.close()


def _record(item_id: str, batch: str, value: float):
    import time
    from pathlib import Path

    import numpy as np

    from ganbridge.core.store import ItemRecord

    latent = {"z": np.full(4, value, np.float32)}
    return ItemRecord(
        item_id, "texture", "m", "sha", None, latent, {}, "png", Path("x"), "s", "generate", [], time.time(), batch
    )


def test_steering_reads_items_and_batch_mates_with_their_latents_kept_decoded(tmp_path):
    from ganbridge.core.store import ItemStore

    store = ItemStore(tmp_path / "db.sqlite3", tmp_path / "out")
    store.add([_record(f"a{i}", "A", i) for i in range(3)] + [_record("b0", "B", 9)])
    seen = store.seen_items(["a2", "missing", "a0"])
    assert [s.id for s in seen] == ["a2", "a0"] and seen[0].latent["z"][0] == 2 and seen[0].batch == "A"
    again = store.seen_items(["a2"])[0]
    assert again.latent["z"] is seen[0].latent["z"]  # kept decoded: steering rereads it every round
    assert not again.latent["z"].flags.writeable  # shared, so nobody may change it
    mates = store.batch_mates(["A", "B"], 10, exclude=["a0"])
    assert [m.id for m in mates] == ["b0", "a2", "a1"]  # newest first, the same order every time
    assert [m.id for m in store.batch_mates(["A"], 1)] == ["a2"]
    store.remove(["a2"])  # an undelivered item: gone from the store and from what is kept
    assert store.seen_items(["a2"]) == [] and [m.id for m in store.batch_mates(["A"], 10)] == ["a1", "a0"]
    store.close()


def test_added_items_are_kept_decoded_as_copies(tmp_path):
    from ganbridge.core.store import ItemStore

    store = ItemStore(tmp_path / "db.sqlite3", tmp_path / "out")
    record = _record("a0", "A", 3)
    store.add([record])
    kept = store._latents.get("a0")  # a steer reads a session's newest items next: no decoding
    record.latent["z"][0] = 99  # the caller's arrays stay the caller's
    assert kept is not None and kept["z"][0] == 3 and not kept["z"].flags.writeable
    assert store.seen_items(["a0"])[0].latent["z"] is kept["z"]
    store.close()


def test_the_latent_cache_stays_within_its_bytes_and_still_answers_everything(tmp_path):
    from ganbridge.core.store import ItemStore

    store = ItemStore(tmp_path / "db.sqlite3", tmp_path / "out")
    store._latents.max_bytes = 3 * 16  # room for three 4-float latents
    store.add([_record(f"i{i}", "A", i) for i in range(8)])
    seen = store.seen_items([f"i{i}" for i in range(8)])
    assert [float(s.latent["z"][0]) for s in seen] == list(range(8))
    assert store._latents.nbytes <= 48 and len(store._latents) == 3
    store.close()


def test_a_store_of_the_first_release_opens_and_steers(tmp_path):
    """Its items table has no batch or how column and no steering indexes: added in place."""
    import json

    import numpy as np

    from ganbridge.core.store import ItemStore, encode_latent

    old = sqlite3.connect(tmp_path / "db.sqlite3")
    old.executescript(
        """
        CREATE TABLE items (id TEXT PRIMARY KEY, generator TEXT NOT NULL, checkpoint_name TEXT NOT NULL,
            checkpoint_sha256 TEXT NOT NULL, seed INTEGER, latent BLOB NOT NULL, params TEXT NOT NULL,
            format TEXT NOT NULL, file TEXT NOT NULL, session TEXT, origin TEXT NOT NULL,
            parents TEXT NOT NULL, created REAL NOT NULL);
        CREATE TABLE feedback (id INTEGER PRIMARY KEY AUTOINCREMENT, item TEXT NOT NULL REFERENCES items(id),
            session TEXT NOT NULL, rating INTEGER NOT NULL, created REAL NOT NULL);
        """
    )
    latent = encode_latent({"z": np.ones(3, np.float32)})
    row = ("old", "texture", "m", "sha", 1, latent, json.dumps({}), "png", "x.png", "s", "generate", "[]", 0.0)
    old.execute("INSERT INTO items VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", row)
    old.commit()
    old.close()
    store = ItemStore(tmp_path / "db.sqlite3", tmp_path / "out")
    rec = store.get("old")
    assert rec is not None and rec.batch is None and rec.how is None and rec.latent["z"].tolist() == [1, 1, 1]
    seen = store.seen_items(["old"])
    assert [(s.id, s.checkpoint_sha256, s.batch) for s in seen] == [("old", "sha", None)]
    indexes = {r[0] for r in store._db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"items_seen", "items_batch_seen"} <= indexes and "items_batch" not in indexes
    store.close()


def _spy_on_commits(store, monkeypatch) -> list[tuple]:
    """Each transaction of `store`, as ("commit", PRAGMA synchronous read inside it: 1 NORMAL,
    2 FULL), and each file sync, as ("fsync", inode), in the order they happen."""
    import os
    from contextlib import contextmanager

    import ganbridge.core.store as store_module

    events: list[tuple] = []
    transaction, fsync = store._transaction, os.fsync

    @contextmanager
    def spy(*args, **kwargs):
        with transaction(*args, **kwargs):
            events.append(("commit", store._db.execute("PRAGMA synchronous").fetchone()[0]))
            yield

    def fsync_spy(fd):
        events.append(("fsync", os.fstat(fd).st_ino))
        fsync(fd)

    monkeypatch.setattr(store, "_transaction", spy)
    monkeypatch.setattr(store_module.os, "fsync", fsync_spy)
    return events


def test_a_rating_commits_durably_and_an_item_cheaply(tmp_path, monkeypatch):
    """A rating is acknowledged only after a synchronous=FULL commit (it survives a power cut);
    an item's recipe commits with NORMAL (it survives the process dying: test_durability)."""
    from ganbridge.core.store import ItemStore

    store = ItemStore(tmp_path / "db.sqlite3", tmp_path / "out")
    events = _spy_on_commits(store, monkeypatch)
    store.add([_record("a0", "A", 1)])
    assert events == [("commit", 1)], "an item's recipe commits with synchronous=NORMAL"
    events.clear()
    store.add_feedback("a0", "s", 1)
    assert [e for e in events if e[0] == "commit"] == [("commit", 2)], "a rating must commit with synchronous=FULL"
    events.clear()
    store.add([_record("a1", "A", 2)])  # and back to NORMAL after a rating
    store.remove(["a1"])
    assert events == [("commit", 1), ("commit", 1)]
    assert store.latest_rating("a0") == 1
    store.close()


def test_a_rating_syncs_its_items_files_before_it_commits_and_writing_them_syncs_nothing(tmp_path, monkeypatch):
    from ganbridge.core.store import ItemStore

    store = ItemStore(tmp_path / "db.sqlite3", tmp_path / "out")
    events = _spy_on_commits(store, monkeypatch)
    files = {}
    for item in ("rated", "other"):
        main = store.output_path("music", item, "mid")
        files[item] = [main, main.with_name(main.name + ".c2pa"), store.output_path("music", item, "mid", "_map")]
        store.write_files([(path, path.name.encode()) for path in files[item]])
        record = _record(item, "A", 1)
        record.file = main
        store.add([record])
    assert events == [("commit", 1), ("commit", 1)], "writing an item's files syncs none of them"
    assert not list((tmp_path / "out").rglob("*.part"))
    assert all(path.read_bytes() == path.name.encode() for paths in files.values() for path in paths)
    events.clear()
    store.add_feedback("rated", "s", -1)
    synced = [e[1] for e in events if e[0] == "fsync"]
    assert {path.stat().st_ino for path in files["rated"]} <= set(synced), "each of the rated item's files is synced"
    assert not {path.stat().st_ino for path in files["other"]} & set(synced), "only the rated item's"
    assert events[-1] == ("commit", 2), "the files are synced before the rating commits"
    events.clear()
    store.add_feedback("rated", "s", 1)  # again: its file and sidecar once more, by their names
    assert {files["rated"][0].stat().st_ino, files["rated"][1].stat().st_ino} <= {e[1] for e in events}
    store.close()
