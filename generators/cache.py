"""What the bridge keeps between requests: a least-recently-used map bounded by the bytes its values
hold, for what it keeps of items (items never change, so nothing kept goes stale; only memory
bounds it), and scratch arrays reused by each thread."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from typing import Generic, TypeVar

import numpy as np

V = TypeVar("V")


class BytesLRU(Generic[V]):
    """`size(value)` bytes per value, at most `max_bytes` in all (0 keeps nothing); the least
    recently used go first. Thread-safe: requests arrive on several threads (the doors)."""

    def __init__(self, max_bytes: int, size: Callable[[V], int]) -> None:
        self.max_bytes = max_bytes
        self._size = size
        self._values: OrderedDict[Hashable, V] = OrderedDict()
        self.nbytes = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._values)

    def get(self, key: Hashable) -> V | None:
        with self._lock:
            value = self._values.get(key)
            if value is not None:
                self._values.move_to_end(key)
            return value

    def get_many(self, keys: Sequence[Hashable]) -> list[V | None]:
        """`get` of each key, under one lock (a steer looks up 128 items)."""
        with self._lock:
            values = [self._values.get(key) for key in keys]
            for key, value in zip(keys, values):
                if value is not None:
                    self._values.move_to_end(key)
            return values

    def put(self, key: Hashable, value: V) -> None:
        """Keep `value` (not when it alone is over the bound)."""
        size = self._size(value)
        with self._lock:
            if size > self.max_bytes or key in self._values:
                return
            self._values[key] = value
            self.nbytes += size
            while self.nbytes > self.max_bytes:
                _, old = self._values.popitem(last=False)
                self.nbytes -= self._size(old)

    def pop(self, key: Hashable) -> None:
        with self._lock:
            value = self._values.pop(key, None)
            if value is not None:
                self.nbytes -= self._size(value)


class Scratch:
    """Arrays each thread reuses from one call to the next, for large temporaries: a fresh array of
    more than 128 KB is memory the OS maps anew, page by page (measured on the development
    machine: 4 ms to fill a fresh 8 MB array, 0.5 ms to fill the same array reused). One array per
    name and thread, kept while it is at most `max_bytes`; larger ones are fresh every time."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._local = threading.local()

    def array(self, name: str, shape: tuple[int, ...], dtype: type[np.generic] = np.float32) -> np.ndarray:
        """An uninitialised array of `shape`: this thread's until it asks for `name` again."""
        size = int(np.prod(shape)) * np.dtype(dtype).itemsize
        if size > self.max_bytes:
            return np.empty(shape, dtype)
        kept: dict[str, np.ndarray] | None = getattr(self._local, "arrays", None)
        if kept is None:
            kept = self._local.arrays = {}
        buffer = kept.get(name)
        if buffer is None or buffer.nbytes < size or buffer.dtype != dtype:
            kept[name] = buffer = np.empty(size // np.dtype(dtype).itemsize, dtype)
        return buffer[: size // buffer.itemsize].reshape(shape)
