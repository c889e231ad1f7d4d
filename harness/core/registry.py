"""One small registry, for every axis that is a set of named units: engines, precision schemes, evaluation tasks,
published claims and their checks. A name maps to its item; items register themselves (or are found by a loader that
runs once, on first use); an unknown name is refused with the kind's own error and the choices."""
from __future__ import annotations

from typing import Callable, Generic, Iterator, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str, error: type[Exception] = KeyError, load: Callable[[], None] | None = None):
        self.kind, self.error, self._load, self._loaded = kind, error, load, load is None
        self._items: dict[str, T] = {}

    def register(self, name: str, item: T) -> T:
        if name in self._items:
            raise ValueError(f"{self.kind} {name!r} registered twice")
        self._items[name] = item
        return item

    def _ready(self) -> None:
        if not self._loaded:
            self._loaded = True
            self._load()

    def get(self, name: str) -> T:
        self._ready()
        if name not in self._items:
            raise self.error(f"unknown {self.kind} {name!r}; choices: {', '.join(self.names())}")
        return self._items[name]

    def names(self) -> list[str]:
        self._ready()
        return sorted(self._items)

    def items(self) -> dict[str, T]:
        self._ready()
        return dict(self._items)

    def __contains__(self, name: object) -> bool:
        self._ready()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
