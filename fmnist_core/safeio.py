"""Bounded reads of files that anyone could have put on disk (run folders, dataset files).

    blob = read_regular(path, limit=64 * 1024)        # never blocks on a FIFO or a device
    obj = read_json(path, limit=64 * 1024)            # never a RecursionError
    obj = torch_load(path, limit=1 << 20)             # weights_only, declared sizes checked
    with open_gzip_capped(src, limit) as chunks: ...  # streams, stops past ``limit`` bytes

Everything refused raises ``FileRefused`` (a ValueError) with a message naming the file;
``FileNotFoundError`` and other ``OSError`` pass through, so callers can say "missing".
Memory use is bounded by the limits the caller passes, never by what a file claims.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import stat
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

ZIP_OVERHEAD = 64 * 1024  # central directory, headers and 64-byte alignment of a torch.save
CHUNK = 1 << 20


class FileRefused(ValueError):
    """A file is not a regular file, is too large, or declares more than it may hold."""


def read_regular(path: str | Path, limit: int) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes.

    Opened non-blocking, so a FIFO or a device is refused instead of hanging the reader.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise FileRefused(f"{path} is not a regular file")
        if info.st_size > limit:
            raise FileRefused(
                f"{path} is {info.st_size:,} bytes, more than the {limit:,} bytes allowed"
            )
        blob = f.read(limit + 1)  # the file may grow after the fstat
    if len(blob) > limit:
        raise FileRefused(f"{path} is more than the {limit:,} bytes allowed")
    return blob


def read_json(path: str | Path, limit: int) -> Any:
    """Parsed JSON of a regular file of at most ``limit`` bytes."""
    blob = read_regular(path, limit)
    try:
        return json.loads(blob)
    except RecursionError:  # thousands of nested brackets
        raise FileRefused(f"{path} is nested too deeply to be a run file") from None
    except ValueError as exc:  # includes UnicodeDecodeError and ints over 4300 digits
        raise FileRefused(f"{path} is not valid JSON: {exc}") from exc


def check_zip_sizes(blob: bytes, path: str | Path, limit: int) -> None:
    """Refuse a torch zip archive whose entries declare more than ``limit`` bytes in all.

    torch.load allocates each entry's declared uncompressed size before it reads it, so a
    small file with one deflated entry of zeros would otherwise cost gigabytes.
    """
    try:
        entries = zipfile.ZipFile(io.BytesIO(blob)).infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as exc:
        raise FileRefused(f"{path} is not a torch weights file (not a zip archive)") from exc
    declared = sum(entry.file_size for entry in entries)
    if declared > limit:
        raise FileRefused(
            f"{path} declares {declared:,} bytes of content, more than the {limit:,} it may hold"
        )


def torch_load(path: str | Path, limit: int) -> Any:
    """``torch.load(weights_only=True)`` of a file whose content is at most ``limit`` bytes.

    The file is read once (size-capped), its zip entries' declared sizes are checked, and
    only then is it unpickled from memory. A foreign pickle is refused, never run.
    """
    blob = read_regular(path, limit + ZIP_OVERHEAD)
    check_zip_sizes(blob, path, limit)
    return torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)


def gunzip_chunks(src: str | Path, limit: int) -> Iterator[bytes]:
    """The decompressed bytes of ``src`` in chunks; FileRefused once past ``limit`` bytes.

    Memory stays at about one chunk whatever the file expands to. Corrupt data raises
    OSError, EOFError or zlib.error as gzip does.
    """
    fd = os.open(src, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as raw:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise FileRefused(f"{src} is not a regular file")
        with gzip.GzipFile(fileobj=raw) as f:
            total = 0
            while chunk := f.read(CHUNK):
                total += len(chunk)
                if total > limit:
                    raise FileRefused(
                        f"{src} unpacks to more than the {limit:,} bytes such a file can hold"
                    )
                yield chunk
