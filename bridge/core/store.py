"""ItemStore: every generated item's recipe and every rating, in SQLite (WAL), plus output files.

A recipe is enough to regenerate the item exactly: generator, checkpoint sha256, params, seed
and the latent itself (stored as safetensors bytes, never pickled).

What survives what:
- A rating commits with `synchronous=FULL`: the write-ahead log is synced before `add_feedback`
  returns, and with it every earlier commit, so the rated item's recipe too. Its files are synced
  just before (of an item made before the bridge started, or before its last UNSYNCED_ITEMS, only
  the file and a MIDI file's sidecar, not a texture's maps). An acknowledged rating, its item's
  recipe and its files survive a power cut.
- An item's files are written under a temporary name and renamed into place, then its recipe
  commits with `synchronous=NORMAL` (the log written, not synced), and only then is the item
  sent. Nothing of that is synced: it is in the operating system's hands, so it survives the
  bridge's process dying at any moment (`kill -9`, a crash, the OOM killer) but not a power cut
  or an OS crash, which may lose the newest unrated items, or keep a recipe whose file the cut
  left empty or missing (the recipe still remakes it). No file is ever seen half-written under
  its own name, and a recipe is committed only once its files are in place.
Syncing each item's files, their folder and the log cost about 1 ms of the 10 ms a 128x128
texture's request takes in process on a 2-core machine; a rating pays for the sync of what it
points at instead.
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from safetensors.numpy import load as load_arrays
from safetensors.numpy import save as save_arrays

from ganbridge.generators.base import Latent
from ganbridge.generators.cache import BytesLRU

SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    id TEXT PRIMARY KEY,
    generator TEXT NOT NULL,
    checkpoint_name TEXT NOT NULL,
    checkpoint_sha256 TEXT NOT NULL,
    seed INTEGER,
    latent BLOB NOT NULL,
    params TEXT NOT NULL,
    format TEXT NOT NULL,
    file TEXT NOT NULL,
    session TEXT,
    origin TEXT NOT NULL,
    parents TEXT NOT NULL,
    created REAL NOT NULL,
    batch TEXT,
    how TEXT,
    look BLOB
);
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    item TEXT NOT NULL REFERENCES items(id),
    session TEXT NOT NULL,
    rating INTEGER NOT NULL,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS feedback_session ON feedback(session, item);
"""
# Columns added after the first release, with what an older store's rows hold for them: no batch
# (each old item is its own batch), no how and no look (steering without a gallery).
ADDED_COLUMNS = {"batch": "TEXT", "how": "TEXT", "look": "BLOB"}
# Steering reads an item's checkpoint and batch by id and by batch, for 128 items a request: from
# covering indexes, since in the table those columns sit after the latent (a 512x512 texture's
# spans 16 overflow pages, which reading `batch` from the row walks: 1 ms for 64 rows).
# A session's latest ratings are read newest first from feedback_recent, which stops after the
# 64th item; feedback_session alone made SQLite read and sort every rating the session ever gave.
STEERING_INDEXES = (
    "DROP INDEX IF EXISTS items_batch",  # the last release's, on batch alone: items_batch_seen replaces it
    "CREATE INDEX IF NOT EXISTS items_seen ON items(id, checkpoint_sha256, batch)",
    "CREATE INDEX IF NOT EXISTS items_batch_seen ON items(batch, id, checkpoint_sha256)",
    "CREATE INDEX IF NOT EXISTS feedback_recent ON feedback(session, id)",
)


@dataclass
class ItemRecord:
    id: str
    generator: str
    checkpoint_name: str
    checkpoint_sha256: str
    seed: int | None
    latent: Latent
    params: dict
    format: str
    file: Path
    session: str | None
    origin: str  # generate | variations | interpolate | steer
    parents: list[str]
    created: float
    batch: str | None = None  # the request that made it: its items were shown side by side
    how: str | None = None  # for steered items: near | new-choice | gallery | random (see generators.steering)
    look: np.ndarray | None = None  # how its output looks (Output.look), float32, for steering over a gallery


@dataclass(frozen=True)
class SeenItem:
    """What steering reads of an item: its model, the batch it was shown in and its latent."""

    id: str
    checkpoint_sha256: str
    batch: str | None
    latent: Latent


def _latent_bytes(latent: Latent) -> int:
    return sum(a.nbytes for a in latent.values())


def _kept(latent: Latent) -> Latent:
    """`latent` as the store keeps it decoded: parts in sorted order (safetensors loads them in any),
    read-only (every request that reads it shares it)."""
    kept = dict(sorted(latent.items()))
    for array in kept.values():
        array.setflags(write=False)
    return kept


def _sync_folder(folder: Path) -> None:
    """Make a rename or a new file in `folder` durable (POSIX; a no-op where folders cannot be opened)."""
    _sync(folder)


def _sync(path: Path | str) -> bool:
    """fsync a file or folder by name; False when it cannot be opened (gone, or a folder on a
    system that cannot open one). A failing fsync itself is ignored: nothing better can be done."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
    return True


def _item_of(path: Path) -> str:
    """The item a file of `output_path` (or a sidecar beside one) belongs to: ids are hex."""
    return path.name.split(".", 1)[0].split("_", 1)[0]


def new_item_id() -> str:
    return secrets.token_hex(8)


def encode_latent(latent: Latent) -> bytes:
    return save_arrays({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in latent.items()})


class ItemStore:
    LATENT_CACHE_BYTES = 64 << 20  # decoded latents kept for steering, which rereads them each round
    LOOK_CACHE_BYTES = 8 << 20  # and looks (a glyph's is 4 KB)
    UNSYNCED_ITEMS = 4096  # the newest items whose written files a rating syncs by name

    def __init__(self, db_path: Path, output_dir: Path):
        self.db_path = Path(db_path)
        self.output_dir = Path(output_dir).resolve()
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.db_path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._synchronous = "FULL"  # until _transaction says otherwise: the schema changes below
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(SCHEMA)
        have = {row[1] for row in self._db.execute("PRAGMA table_info(items)")}
        for name, kind in ADDED_COLUMNS.items():
            if name not in have:
                self._db.execute(f"ALTER TABLE items ADD COLUMN {name} {kind}")
        for statement in STEERING_INDEXES:
            self._db.execute(statement)
        self._latents: BytesLRU[Latent] = BytesLRU(self.LATENT_CACHE_BYTES, _latent_bytes)  # read-only arrays
        self._looks: BytesLRU[np.ndarray] = BytesLRU(self.LOOK_CACHE_BYTES, lambda look: look.nbytes)
        self._unsynced: OrderedDict[str, list[str]] = OrderedDict()  # item -> its files not yet synced
        self._new_folders: set[Path] = set()  # folders made for files, their names not yet synced

    @contextmanager
    def _transaction(self, durable: bool) -> Iterator[None]:
        """One atomic commit (the connection is otherwise in autocommit mode), the lock held.
        `durable`: synced to disk before this returns (`synchronous=FULL`, which in WAL mode also
        makes every earlier commit durable); else written to the log for the OS to sync
        (`NORMAL`: it survives the process dying, not a power cut)."""
        synchronous = "FULL" if durable else "NORMAL"
        if synchronous != self._synchronous:  # SQLite takes the change between transactions only
            self._db.execute(f"PRAGMA synchronous={synchronous}")
            self._synchronous = synchronous
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def output_path(self, generator: str, item_id: str, fmt: str, suffix: str = "") -> Path:
        """Where an item's file goes: always inside the output folder."""
        path = (self.output_dir / generator / f"{item_id}{suffix}.{fmt}").resolve()
        if self.output_dir not in path.parents:
            raise ValueError(f"refusing to write outside the output folder: {path}")
        return path

    def write_files(self, files: list[tuple[Path, bytes]]) -> None:
        """Each file written to a temporary name and renamed into place, unsynced: it survives the
        process dying from the rename on, a power cut once synced (`_sync_files`, which a
        rating does; the OS writes it back by itself within about 30 s, vm.dirty_expire_centisecs).
        Syncing each file and its folder here cost 0.65 ms of a 128x128 texture's request (0.8 ms
        against 0.15 ms for an 18 KB file, on this machine's ext4)."""
        written: dict[str, list[str]] = {}
        made: list[Path] = []
        for path, data in files:
            if not path.parent.is_dir():
                path.parent.mkdir(parents=True, exist_ok=True)
                made.append(path.parent)
            tmp = path.with_name(path.name + ".part")
            with open(tmp, "wb") as f:
                f.write(data)
            tmp.replace(path)
            written.setdefault(_item_of(path), []).append(str(path))
        with self._lock:
            self._new_folders.update(made)  # their names are synced with the first item rated in them
            for item_id, paths in written.items():
                self._unsynced.setdefault(item_id, []).extend(paths)
                self._unsynced.move_to_end(item_id)
            while len(self._unsynced) > self.UNSYNCED_ITEMS:
                self._unsynced.popitem(last=False)

    def _files_of(self, item_id: str) -> list[str]:
        """An item's files to sync for a power cut (lock held): those written for it since the
        bridge started; for an item older than the last UNSYNCED_ITEMS (the OS has written those
        back by itself long since, unless it was cut off first), its file and a sidecar's name."""
        paths = self._unsynced.pop(item_id, None)
        if paths is None:
            row = self._db.execute("SELECT file FROM items WHERE id = ?", (item_id,)).fetchone()
            paths = [row[0], row[0] + ".c2pa"] if row else []
        return paths

    def _sync_files(self, paths: list[str], new_folders: set[Path]) -> None:
        """Make these files' bytes and names durable: each synced, then their folders, and the
        names of those among `new_folders` (made by this bridge) in their own folders."""
        folders: dict[Path, None] = {}
        for name in paths:
            if _sync(name):  # else no sidecar, or deleted from the output folder: its recipe remakes it
                folders[Path(name).parent] = None
        for folder in folders:
            _sync_folder(folder)
            if folder in new_folders:
                _sync_folder(folder.parent)

    def remove_files(self, paths: list[Path]) -> None:
        for path in paths:
            if self.output_dir in path.parents:
                path.unlink(missing_ok=True)
                path.with_name(path.name + ".part").unlink(missing_ok=True)

    def remove(self, item_ids: list[str]) -> None:
        """Delete items that were never delivered (no rating can point at them)."""
        if not item_ids:
            return
        marks = ",".join("?" * len(item_ids))
        # Not durable: a power cut may bring back an undelivered item's recipe (without its file).
        with self._lock, self._transaction(durable=False):
            self._db.execute(f"DELETE FROM items WHERE id IN ({marks})", item_ids)
            for item_id in item_ids:
                self._latents.pop(item_id)
                self._unsynced.pop(item_id, None)

    def add(self, records: list[ItemRecord]) -> None:
        rows = [
            (
                r.id,
                r.generator,
                r.checkpoint_name,
                r.checkpoint_sha256,
                r.seed,
                encode_latent(r.latent),
                json.dumps(r.params),
                r.format,
                str(r.file),
                r.session,
                r.origin,
                json.dumps(r.parents),
                r.created,
                r.batch,
                r.how,
                None if r.look is None else np.asarray(r.look, np.float32).tobytes(),
            )
            for r in records
        ]
        with self._lock, self._transaction(durable=False):  # see the module's docstring
            self._db.executemany("INSERT INTO items VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
        # Kept decoded from the start: a steered session reads its newest items next, and decoding
        # them would walk their latents' overflow pages (a 512x512 texture's spans 16).
        for r in records:
            self._latents.put(r.id, _kept({k: np.array(v, np.float32, order="C") for k, v in r.latent.items()}))
            if r.look is not None:
                look = np.array(r.look, np.float32).ravel()
                look.setflags(write=False)
                self._looks.put(r.id, look)

    def params_of(self, item_id: str) -> dict | None:
        """An item's params, without decoding its latent (None: no such item)."""
        with self._lock:
            row = self._db.execute("SELECT params FROM items WHERE id = ?", (item_id,)).fetchone()
        return json.loads(row[0]) if row else None

    def params_of_many(self, item_ids: Collection[str]) -> dict[str, dict]:
        """These items' params by id (those that exist), without decoding their latents."""
        if not item_ids:
            return {}
        ids = list(item_ids)
        marks = ",".join("?" * len(ids))
        with self._lock:
            rows = self._db.execute(f"SELECT id, params FROM items WHERE id IN ({marks})", ids).fetchall()
        return {item_id: json.loads(params) for item_id, params in rows}

    def get(self, item_id: str) -> ItemRecord | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM items WHERE id = ?", (item_id,)).fetchone()
        return self._record(row) if row else None

    @staticmethod
    def _record(row: tuple) -> ItemRecord:
        return ItemRecord(
            id=row[0],
            generator=row[1],
            checkpoint_name=row[2],
            checkpoint_sha256=row[3],
            seed=row[4],
            latent=dict(sorted(load_arrays(row[5]).items())),  # safetensors loads keys in any order
            params=json.loads(row[6]),
            format=row[7],
            file=Path(row[8]),
            session=row[9],
            origin=row[10],
            parents=json.loads(row[11]),
            created=row[12],
            batch=row[13],
            how=row[14],
            look=None if row[15] is None else np.frombuffer(row[15], np.float32),
        )

    def add_feedback(self, item_id: str, session: str, rating: int) -> None:
        """Returns only after the rating is committed to disk, with the rated item's recipe (the
        sync of the log covers its earlier commit) and files (synced first, without the lock,
        so the worker's commits go on meanwhile)."""
        with self._lock:
            paths = self._files_of(item_id)
            new_folders = {Path(p).parent for p in paths} & self._new_folders
            self._new_folders -= new_folders
        self._sync_files(paths, new_folders)
        with self._lock, self._transaction(durable=True):
            self._db.execute(
                "INSERT INTO feedback (item, session, rating, created) VALUES (?,?,?,?)",
                (item_id, session, rating, time.time()),
            )

    def latest_rating(self, item_id: str, session: str | None = None) -> int | None:
        """The item's latest rating in `session` (None: in any session)."""
        where, args = (
            ("item = ? AND session = ?", (item_id, session)) if session is not None else ("item = ?", (item_id,))
        )
        with self._lock:
            row = self._db.execute(
                f"SELECT rating FROM feedback WHERE {where} ORDER BY id DESC LIMIT 1", args
            ).fetchone()
        return row[0] if row else None

    def ratings(self, item_id: str) -> dict[str, int]:
        """The latest rating each session gave this item (0: cleared)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT session, rating FROM feedback WHERE id IN "
                "(SELECT MAX(id) FROM feedback WHERE item = ? GROUP BY session) ORDER BY session",
                (item_id,),
            ).fetchall()
        return dict(rows)

    def session_ratings(self, session: str, generator: str, limit: int = 64) -> list[tuple[str, int]]:
        """(item, rating) of the `limit` items of `generator` this session rated most
        recently, each with its latest rating (0 when cleared), newest first."""
        with self._lock:
            return self._db.execute(
                """
                SELECT f.item, f.rating FROM feedback f INDEXED BY feedback_recent
                JOIN items i ON i.id = f.item
                WHERE f.session = ? AND i.generator = ?
                  AND f.id = (SELECT MAX(id) FROM feedback g WHERE g.item = f.item AND g.session = f.session)
                ORDER BY f.id DESC
                LIMIT ?
                """,
                (session, generator, limit),
            ).fetchall()

    def seen_items(self, item_ids: list[str]) -> list[SeenItem]:
        """These items (those that exist), in the order asked."""
        if not item_ids:
            return []
        marks = ",".join("?" * len(item_ids))
        with self._lock:
            rows = self._db.execute(
                f"SELECT id, checkpoint_sha256, batch FROM items INDEXED BY items_seen WHERE id IN ({marks})", item_ids
            ).fetchall()
            by_id = {row[0]: row for row in rows}
            ordered = [by_id[i] for i in item_ids if i in by_id]
            return self._with_latents(ordered)

    def batch_mates(self, batches: list[str], limit: int, exclude: Collection[str] = ()) -> list[SeenItem]:
        """Up to `limit` items of these batches but not in `exclude`, the newest first (in the
        reverse of the order they were stored: the same items in the same order every time, so a
        seeded steer repeats)."""
        if not batches or limit <= 0:
            return []
        marks = ",".join("?" * len(batches))
        skip = ",".join("?" * len(exclude))
        with self._lock:
            rows = self._db.execute(
                f"SELECT id, checkpoint_sha256, batch FROM items WHERE batch IN ({marks}) AND id NOT IN ({skip}) "
                "ORDER BY rowid DESC LIMIT ?",
                [*batches, *list(exclude), limit],
            ).fetchall()
            return self._with_latents(rows)

    def _with_latents(self, rows: list[tuple]) -> list[SeenItem]:
        """(id, checkpoint, batch) rows with their latents, decoding only those not kept (lock held)."""
        ids = [row[0] for row in rows]
        latents = {i: kept for i, kept in zip(ids, self._latents.get_many(ids)) if kept is not None}
        missing = [i for i in ids if i not in latents]
        if missing:
            marks = ",".join("?" * len(missing))
            for item_id, blob in self._db.execute(f"SELECT id, latent FROM items WHERE id IN ({marks})", missing):
                latent = _kept(load_arrays(blob))
                latents[item_id] = latent
                self._latents.put(item_id, latent)
        return [SeenItem(item_id, sha, batch, latents[item_id]) for item_id, sha, batch in rows]

    def looks(self, item_ids: list[str]) -> dict[str, np.ndarray]:
        """The looks (read-only) of those of these items that have one: kept from `add`, else read."""
        out = {i: look for i, look in zip(item_ids, self._looks.get_many(item_ids)) if look is not None}
        missing = [i for i in item_ids if i not in out]
        if missing:
            marks = ",".join("?" * len(missing))
            query = f"SELECT id, look FROM items WHERE id IN ({marks}) AND look IS NOT NULL"
            with self._lock:
                rows = self._db.execute(query, missing).fetchall()
            for item_id, blob in rows:
                look = np.frombuffer(blob, np.float32)  # read-only: a view of the bytes
                out[item_id] = look
                self._looks.put(item_id, look)
        return out

    def counts(self) -> dict[str, int]:
        with self._lock:
            items = self._db.execute("SELECT COUNT(*) FROM items").fetchone()[0]
            feedback = self._db.execute("SELECT COUNT(*) FROM feedback").fetchone()[0]
        return {"items": items, "feedback": feedback}
