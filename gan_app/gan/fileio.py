"""Paths, bytes and binary files interchangeably: the Django side passes storage files."""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

Source = str | os.PathLike | bytes | BinaryIO
Dest = str | os.PathLike | BinaryIO


def read_bytes(source: Source) -> bytes:
    if isinstance(source, bytes | bytearray | memoryview):
        return bytes(source)
    if isinstance(source, str | os.PathLike):
        return Path(source).read_bytes()
    return source.read()


def write_bytes(dest: Dest, data: bytes) -> None:
    """To a path atomically (a crash never leaves half a file behind), or to a binary file."""
    if isinstance(dest, str | os.PathLike):
        path = Path(dest)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
    else:
        dest.write(data)
