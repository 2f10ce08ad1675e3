"""Inputs as the user names them: a file, standard input (``-``), a pipe or FIFO, gzip-compressed or not.

Readers tell a format by an input's first bytes (``head``, decompressed), then read it as a stream
(``open``). A regular file can be opened again; a pipe, FIFO or standard input is read once, its head
included. Formats that need random access (Parquet) get a seekable copy of a stream (``random_access``).
Compression is judged by content (the gzip magic number), never by the file's name.
"""
from __future__ import annotations

import gzip
import io
import os
import shutil
import stat
import sys
import tempfile
from typing import BinaryIO, Callable

from ..errors import InputError, Problem

STDIN = "-"
GZIP_MAGIC = b"\x1f\x8b"
HEAD_BYTES = 1 << 16
_STREAM_BUFFER = 1 << 20
_UNREADABLE = (OSError, EOFError)  # gzip.BadGzipFile is an OSError


def _read_upto(stream: BinaryIO, n: int) -> bytes:
    """Up to ``n`` bytes, fewer only at the end of the stream (pipes return what they hold)."""
    parts, got = [], 0
    while got < n:
        part = stream.read(n - got)
        if not part:
            break
        parts.append(part)
        got += len(part)
    return b"".join(parts)


class _Prefixed(io.RawIOBase):
    """Bytes already read from a stream, then the rest of it; a failure to read the rest (an I/O error,
    a gzip stream cut short) raises ``error(exc)``, an InputError naming the input."""

    def __init__(self, prefix: bytes, rest: BinaryIO, error: Callable[[BaseException], InputError]):
        self._prefix, self._rest, self._error = memoryview(prefix), rest, error

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        if len(self._prefix):
            n = min(len(buffer), len(self._prefix))
            buffer[:n] = self._prefix[:n]
            self._prefix = self._prefix[n:]
            return n
        try:
            return self._rest.readinto(buffer)
        except _UNREADABLE as exc:
            raise self._error(exc) from None

    def close(self) -> None:
        if self._rest is not sys.stdin.buffer:
            self._rest.close()
        super().close()


class Input:
    """One input: ``name`` for messages, ``compressed`` (gzip), ``regular`` (a regular file) and ``head``,
    its first (decompressed) bytes. ``what`` words it in errors ("trace file", "flow table")."""

    def __init__(self, path: str | os.PathLike, what: str = "file"):
        self.path = str(path)
        self.name = "<stdin>" if self.path == STDIN else self.path
        self.what = what
        self._stream: BinaryIO | None = None
        if self.path == STDIN:
            self.regular = False
            raw: BinaryIO = sys.stdin.buffer
        else:
            try:
                mode = os.stat(self.path).st_mode
            except FileNotFoundError:
                raise InputError(Problem(f"no such {what}", source=self.name)) from None
            except OSError as exc:
                raise self.error(exc) from None
            if stat.S_ISDIR(mode):
                raise InputError(Problem(f"is a directory, not a {what}", source=self.name))
            self.regular = stat.S_ISREG(mode)
            try:
                raw = open(self.path, "rb")
            except OSError as exc:
                raise self.error(exc) from None
        try:
            magic = _read_upto(raw, len(GZIP_MAGIC))
            self.compressed = magic == GZIP_MAGIC
            if self.regular:
                raw.close()
                with self._reopen() as f:
                    self.head = _read_upto(f, HEAD_BYTES)
            else:
                rest: BinaryIO = io.BufferedReader(_Prefixed(magic, raw, self.error), _STREAM_BUFFER)
                if self.compressed:
                    rest = gzip.GzipFile(fileobj=rest, mode="rb")
                self.head = _read_upto(rest, HEAD_BYTES)
                self._stream = io.BufferedReader(_Prefixed(self.head, rest, self.error), _STREAM_BUFFER)
        except _UNREADABLE as exc:
            raise self.error(exc) from None

    def error(self, exc: BaseException) -> InputError:
        """An InputError for a failure to read this input (a gzip stream cut short, an I/O error)."""
        detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc) or type(exc).__name__
        return InputError(Problem(f"cannot read {self.what}: {detail}", source=self.name))

    def _reopen(self) -> BinaryIO:
        if not self.compressed:
            return open(self.path, "rb")
        return io.BufferedReader(_Prefixed(b"", gzip.open(self.path, "rb"), self.error), _STREAM_BUFFER)

    def open(self) -> BinaryIO:
        """The content from its first byte, decompressed. A stream (not a regular file) opens only once."""
        if self.regular:
            try:
                return self._reopen()
            except OSError as exc:
                raise self.error(exc) from None
        if self._stream is None:
            raise InputError(Problem(f"a {self.what} read from a pipe can be read only once", source=self.name))
        stream, self._stream = self._stream, None
        return stream

    @property
    def seekable(self) -> bool:
        """A regular uncompressed file: ``self.path`` itself can be read at random."""
        return self.regular and not self.compressed

    def arrow(self):
        """The content for pyarrow's readers: the path of a plain regular file (read natively), else the stream."""
        import pyarrow as pa

        return pa.OSFile(self.path) if self.seekable else self.open()

    def random_access(self):
        """The content as something read at random: the file itself, or a stream spooled to an anonymous
        temporary file (removed when closed) for formats such as Parquet whose index is at the end."""
        if self.seekable:
            return self.path
        copy = tempfile.TemporaryFile()
        try:
            with self.open() as stream:
                shutil.copyfileobj(stream, copy, _STREAM_BUFFER)
        except _UNREADABLE as exc:
            copy.close()
            raise self.error(exc) from None
        copy.seek(0)
        return copy


__all__ = ["GZIP_MAGIC", "HEAD_BYTES", "Input", "STDIN"]
