"""A least-recently-used map bounded by the bytes its values hold: what the bridge keeps of items
between requests (items never change, so nothing kept goes stale; only memory bounds it)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

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
