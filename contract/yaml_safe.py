"""Reading config files and YAML that cannot hang, exhaust memory or overflow the stack.

A config file is read only if it is a regular file under a size cap (a FIFO, /dev/zero or
/dev/urandom named as a config is refused at once, without blocking on open or read); its YAML
is parsed with a cap on nesting depth and on the size the document would have with every alias
expanded (billion laughs), so neither a validator nor an error message can walk a huge value.
Every refusal is a ConfigError naming the file (and the key, when the caller gives one).
"""

from __future__ import annotations

import os
import reprlib
import stat
from pathlib import Path
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, SequenceNode

MAX_CONFIG_BYTES = 4 * 1024 * 1024
"""The largest config file read (a camera config with many zones is a few KiB)."""
MAX_SECRET_BYTES = 64 * 1024
"""The largest password / CA file read."""
MAX_DEPTH = 64
"""Deepest nesting of mappings and sequences (real configs: < 10)."""
MAX_EXPANDED_NODES = 100_000
"""Most YAML nodes a document may have with its aliases expanded (real configs: a few thousand)."""


class FileProblem(Exception):
    """Why a file cannot be read as a config; the caller prefixes the file (and key)."""


def _what(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def read_regular_file(path: Path | str, *, max_bytes: int) -> bytes:
    """The bytes of `path`, which must be a regular file of at most `max_bytes`. Raises
    FileNotFoundError, FileProblem (not a regular file, too large) or OSError.

    Opened with O_NONBLOCK so that a FIFO with no writer does not block the open; the type is
    checked on the open descriptor (no race with a rename), and at most max_bytes + 1 are read,
    so a file that grows meanwhile is still refused rather than read whole."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise FileProblem(f"{_what(st.st_mode)}, not a regular file")
        if st.st_size > max_bytes:
            raise FileProblem(f"{st.st_size:,} bytes, more than the {max_bytes:,} a config file may have")
        chunks: list[bytes] = []
        left = max_bytes + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        data = b"".join(chunks)
        if len(data) > max_bytes:
            raise FileProblem(f"more than the {max_bytes:,} bytes a config file may have")
        return data
    finally:
        os.close(fd)


def check_regular_file(path: Path | str, *, max_bytes: int) -> None:
    """Raise FileProblem/OSError unless `path` is a readable regular file of at most `max_bytes`
    (for files a run reads later: password, CA)."""
    read_regular_file(path, max_bytes=max_bytes)


class _BoundedComposer(Composer):
    """PyYAML's composer with a depth cap (it recurses: 5,000 levels would be a RecursionError)
    and a cap on the expanded size, counted per alias with the anchored node's memoised size."""

    def __init__(self) -> None:
        super().__init__()
        self._depth = 0
        self._expanded = 0
        self._sizes: dict[int, int] = {}

    def _node_size(self, node: Node) -> int:
        key = id(node)
        if key in self._sizes:
            return self._sizes[key]
        size = 1
        if isinstance(node, SequenceNode):
            size += sum(self._node_size(item) for item in node.value)
        elif isinstance(node, MappingNode):
            size += sum(self._node_size(k) + self._node_size(v) for k, v in node.value)
        self._sizes[key] = size
        return size

    def _count(self, n: int) -> None:
        self._expanded += n
        if self._expanded > MAX_EXPANDED_NODES:
            raise yaml.YAMLError(
                f"the document expands to more than {MAX_EXPANDED_NODES:,} values (aliases repeated too often)"
            )

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        parser: Any = self  # the Parser half of the loader this is mixed into
        if parser.check_event(AliasEvent):
            event = parser.peek_event()
            anchored = self.anchors.get(event.anchor)
            if anchored is not None:
                # Its own node was counted once already; each further use adds its whole size.
                self._count(self._node_size(anchored))
            return super().compose_node(parent, index)
        self._depth += 1
        if self._depth > MAX_DEPTH:
            event = parser.peek_event()
            raise yaml.YAMLError(f"nested deeper than {MAX_DEPTH} levels (line {event.start_mark.line + 1})")
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        self._count(1)
        return node


class BoundedSafeLoader(
    yaml.reader.Reader,
    yaml.scanner.Scanner,
    yaml.parser.Parser,
    _BoundedComposer,
    yaml.constructor.SafeConstructor,
    yaml.resolver.Resolver,
):
    """yaml.SafeLoader with the caps above."""

    def __init__(self, stream: Any) -> None:
        yaml.reader.Reader.__init__(self, stream)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)
        _BoundedComposer.__init__(self)
        yaml.constructor.SafeConstructor.__init__(self)
        yaml.resolver.Resolver.__init__(self)


def safe_load(text: str | bytes) -> Any:
    """yaml.safe_load with the depth and expansion caps; raises yaml.YAMLError."""
    loader = BoundedSafeLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


_repr = reprlib.Repr()
_repr.maxlevel = 3
_repr.maxstring = 60
_repr.maxother = 60
_repr.maxlist = _repr.maxtuple = _repr.maxset = _repr.maxfrozenset = _repr.maxdeque = 5
_repr.maxdict = 4


def short_repr(value: Any, limit: int = 80) -> str:
    """repr() of `value` cut to `limit` characters, without ever building the whole repr (an
    aliased YAML value may be shared a billion times over)."""
    text = _repr.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
