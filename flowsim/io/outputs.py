"""Safe outputs: a file a command writes appears whole when the run succeeds, or not at all, and never over an input.

A run names its inputs and outputs up front in a :class:`RunFiles`. Before anything is read, an output that
is one of the inputs or another output of the run (the same path, through a symbolic link, or a hard link
to the same file) is refused, naming both. Each output is written to a temporary file beside its target and
renamed into place when the run has succeeded; a run that fails, is interrupted (SIGINT) or terminated
(SIGTERM, see :func:`sigterm_raises`) removes its temporary files and leaves whatever was at the target
untouched. Standard output (``-`` or no path) and existing devices or FIFOs are written directly.
"""
from __future__ import annotations

import os
import signal
import stat
import sys
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator

from ..errors import InputError, Problem

STDOUT = "-"
TEMP_SUFFIX = ".flowsim-tmp"  # temporary outputs are named .TARGET.RANDOM.flowsim-tmp, beside TARGET
SIGTERM_STATUS = 128 + signal.SIGTERM  # the shell's status for a process ended by SIGTERM


class Terminated(BaseException):
    """The process received SIGTERM: unwinds like KeyboardInterrupt, so outputs are cleaned up."""


@contextmanager
def sigterm_raises() -> Iterator[None]:
    """Inside, SIGTERM raises :class:`Terminated` in the main thread (once: a second SIGTERM during the
    clean-up is ignored). A SIGTERM the process was told to ignore stays ignored; outside the main
    thread signals cannot be handled: nothing changes."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGTERM) == signal.SIG_IGN:
        yield
        return

    def terminate(signum: int, frame: object) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise Terminated(signum)

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _default_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


class Output:
    """One output of a run: ``target`` as the user named it (None: standard output) and ``path``, the file
    to open for writing meanwhile (a temporary file beside the target; None for standard output)."""

    def __init__(self, flag: str, target: str | os.PathLike | None):
        self.flag = flag
        self.target = None if target is None or str(target) == STDOUT else str(target)
        self.path: str | None = None
        self._temporary = False

    @property
    def stdout(self) -> bool:
        return self.target is None

    @property
    def suffix(self) -> str:
        """The target's suffix, lower case: what decides the format (the temporary file's is not its own)."""
        return Path(self.target).suffix.lower() if self.target else ""

    def write_text(self, text: str, what: str = "output") -> None:
        """Write the whole of a small text output (a summary, a report, a configuration) at once."""
        try:
            if self.stdout:
                sys.stdout.write(text)
                sys.stdout.flush()
                return
            with open(self.path, "w", encoding="utf-8") as fh:
                fh.write(text)
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise InputError(self.problem(f"cannot write {what}: {exc.strerror or exc}")) from None

    def problem(self, message: str) -> Problem:
        """A Problem about this output, naming the target (not the temporary file)."""
        return Problem(message, self.flag, self.target or "<stdout>")

    def _prepare(self) -> None:
        if self.target is None:
            return
        real = os.path.realpath(self.target)
        try:
            st = os.stat(real)
        except FileNotFoundError:
            st = None
        except OSError as exc:
            raise InputError(self.problem(f"cannot write output: {exc.strerror or exc}")) from None
        if st is not None and stat.S_ISDIR(st.st_mode):
            raise InputError(self.problem("cannot write output: it is a directory"))
        if st is not None and not stat.S_ISREG(st.st_mode):
            self.path = self.target  # a device or FIFO: nothing of its own to keep or replace
            return
        folder, name = os.path.split(real)
        try:
            fd, self.path = tempfile.mkstemp(prefix=f".{name[:100]}.", suffix=TEMP_SUFFIX, dir=folder or ".")
            self._temporary = True
            os.fchmod(fd, stat.S_IMODE(st.st_mode) if st is not None else _default_mode())
            os.close(fd)
        except OSError as exc:
            raise InputError(self.problem(f"cannot write output: {exc.strerror or exc}")) from None

    def _commit(self) -> None:
        if self._temporary:
            try:
                os.replace(self.path, os.path.realpath(self.target))
            except OSError as exc:
                raise InputError(self.problem(f"cannot write output: {exc.strerror or exc}")) from None
            self._temporary = False

    def _discard(self) -> None:
        if self._temporary:
            try:
                os.remove(self.path)
            except FileNotFoundError:
                pass
            self._temporary = False


def _identity(path: str) -> tuple[str, tuple[int, int] | None]:
    """(resolved path, (device, inode) of the file if it exists)."""
    real = os.path.realpath(path)
    try:
        st = os.stat(real)
    except OSError:
        return real, None
    return real, (st.st_dev, st.st_ino)


def _writes_in_place(path: str) -> bool:
    """An existing device, FIFO or socket: written directly, so the same-file checks do not apply."""
    try:
        return not stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


class RunFiles:
    """The inputs and outputs of one run: checked against each other on entry, outputs committed on a
    normal exit and discarded when an exception (failure, SIGINT, SIGTERM) leaves the block.

    ``inputs``: (what, path) pairs, e.g. ("trace", "t.csv"); ``-`` (standard input) is left out.
    ``outputs``: (flag, path or None) pairs, e.g. ("-o", "out.csv"); each is then ``files[flag]``.
    """

    def __init__(self, inputs: Iterable[tuple[str, str | os.PathLike]],
                 outputs: Iterable[tuple[str, str | os.PathLike | None]]):
        self.inputs = [(what, str(path)) for what, path in inputs if path is not None and str(path) != STDOUT]
        self.outputs = {flag: Output(flag, path) for flag, path in outputs}

    def __getitem__(self, flag: str) -> Output:
        return self.outputs[flag]

    def check(self) -> None:
        """Refuse an output that is an input or another output of the run."""
        seen: list[tuple[str, str, tuple[str, tuple[int, int] | None]]] = [
            (f"the {what}", path, _identity(path)) for what, path in self.inputs]
        problems = []
        for out in self.outputs.values():
            if out.stdout or _writes_in_place(out.target):
                continue
            real, inode = _identity(out.target)
            for other, path, (other_real, other_inode) in seen:
                if real == other_real or (inode is not None and inode == other_inode):
                    problems.append(out.problem(f"is the same file as {other} {path}: refusing to write over it"))
                    break
            seen.append((f"the output of {out.flag}", out.target, (real, inode)))
        if problems:
            raise InputError(problems)

    def __enter__(self) -> RunFiles:
        self.check()
        try:
            for out in self.outputs.values():
                out._prepare()
        except BaseException:
            self.discard()
            raise
        return self

    def __exit__(self, kind: type | None, value: BaseException | None, traceback: object) -> None:
        if kind is None:
            self.commit()
        else:
            self.discard()

    def commit(self) -> None:
        """Rename every temporary file onto its target."""
        try:
            for out in self.outputs.values():
                out._commit()
        finally:
            self.discard()

    def discard(self) -> None:
        """Remove the temporary files; targets are left as they were."""
        for out in self.outputs.values():
            out._discard()


@contextmanager
def writing(output: Output | str | os.PathLike | None, flag: str = "-o",
            inputs: Iterable[tuple[str, str | os.PathLike]] = ()) -> Iterator[Output]:
    """``output`` ready to write: an Output of the caller's run as it is, or a path (None: standard output)
    written safely for this call alone, refused if it is one of ``inputs``."""
    if isinstance(output, Output):
        yield output
        return
    with RunFiles(inputs, [(flag, output)]) as files:
        yield files[flag]


def write_table(table: Any, output: Output | str | os.PathLike | None) -> None:
    """Write a whole pyarrow table: Parquet for a `.parquet`/`.pq` target, else CSV (standard output: CSV)."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    with writing(output) as out:
        try:
            if out.stdout:
                pacsv.write_csv(table, sys.stdout.buffer)
            elif out.suffix in (".parquet", ".pq"):
                pq.write_table(table, out.path)
            else:
                pacsv.write_csv(table, out.path)
        except OSError as exc:
            raise InputError(out.problem(f"cannot write output: {exc.strerror or exc}")) from None


__all__ = ["Output", "RunFiles", "STDOUT", "SIGTERM_STATUS", "TEMP_SUFFIX", "Terminated", "sigterm_raises", "write_table", "writing"]
