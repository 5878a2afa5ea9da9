"""YAML config files read with a bounded size: aliases may not make a small file expand into a huge one.

An alias (``*name``) repeats a node the file defines once; nested aliases repeat repetitions, so a few hundred
bytes can stand for billions of values (a "billion laughs" file).  :func:`load_yaml` counts, while the
document is composed and before any Python object is built, how many nodes the document holds with every
alias written out, and stops at :data:`MAX_NODES` (or :data:`MAX_ALIASES` aliases, or an alias to a node that
contains it) with one line.
"""

from __future__ import annotations

from typing import Any

from .errors import ConfigError

__all__ = ["load_yaml", "MAX_NODES", "MAX_ALIASES"]

#: nodes a config document may hold with its aliases written out (a list of 3600 angles is 3601)
MAX_NODES = 200_000
#: aliases a config document may use
MAX_ALIASES = 1_000


class _Budget(Exception):
    """Raised inside the composer when the document grows past a limit (the message says which)."""


def _loader_class():
    import yaml

    class BoundedLoader(yaml.SafeLoader):
        """A SafeLoader that counts the expanded size of the node graph as it composes it."""

        def __init__(self, stream):
            super().__init__(stream)
            self._nodes = 0
            self._aliases = 0
            self._sizes: dict[int, int] = {}  # id(node) -> its expanded size, once composed

        def _grow(self, n: int) -> None:
            self._nodes += n
            if self._nodes > MAX_NODES:
                raise _Budget(f"too many YAML aliases (the values expand to more than {MAX_NODES} items)")

        def compose_node(self, parent, index):
            if self.check_event(yaml.AliasEvent):
                anchor = self.peek_event().anchor
                node = self.anchors.get(anchor)
                if node is not None:
                    self._aliases += 1
                    if self._aliases > MAX_ALIASES:
                        raise _Budget(f"too many YAML aliases (more than {MAX_ALIASES})")
                    if id(node) not in self._sizes:
                        raise _Budget(f"YAML alias *{anchor} refers to a value that contains it (an endless value)")
                    self._grow(self._sizes[id(node)])
                return super().compose_node(parent, index)
            start = self._nodes
            node = super().compose_node(parent, index)
            self._grow(1)
            self._sizes[id(node)] = self._nodes - start
            return node

    return BoundedLoader


def load_yaml(text: str, where: str) -> Any:
    """Parse one YAML document with :data:`MAX_NODES` and :data:`MAX_ALIASES` as limits.

    Arguments:
        text: The document.
        where: The config file, for the message.

    Returns:
        The document as Python objects (``yaml.safe_load``'s types).

    Raises:
        ConfigError: The document expands past a limit (one line: write the values out).
    """
    loader = _loader_class()(text)
    try:
        return loader.get_single_data()
    except _Budget as exc:
        raise ConfigError(f"config file {where}: {exc}; write the values out instead of repeating them "
                          "with aliases") from None
    finally:
        loader.dispose()
