"""A small name -> factory registry used for operators, noise models and methods."""

from __future__ import annotations

import difflib
from typing import Any, Callable, Generic, TypeVar

from .errors import OperatorError

__all__ = ["Registry"]

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to registered entries.

    Arguments:
        kind: What the entries are, used in error messages ("operator", "method").

    Example:
        >>> R = Registry("thing")
        >>> @R.register("a")
        ... class A: pass
        >>> R.get("a") is A
        True
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Class decorator registering ``obj`` under ``name`` (a second registration of a name is an error)."""

        def deco(obj: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} registered twice")
            self._entries[name] = obj
            return obj

        return deco

    def add(self, name: str, obj: T) -> None:
        self.register(name)(obj)

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def get(self, name: str) -> T:
        """The entry of ``name``; an unknown name raises :class:`OperatorError` listing the valid ones."""
        try:
            return self._entries[name]
        except KeyError:
            close = difflib.get_close_matches(str(name), self.names(), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise OperatorError(
                f"unknown {self.kind} {name!r}{hint}; valid: {', '.join(self.names())}"
            ) from None

    def items(self) -> list[tuple[str, Any]]:
        return sorted(self._entries.items())
