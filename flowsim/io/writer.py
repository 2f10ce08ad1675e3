"""Tables out: CSV or Parquet by the target's suffix, encoded on a thread of its own."""
from __future__ import annotations

import queue
import sys
import threading

import pyarrow as pa

from ..errors import InputError
from .outputs import Output


class TableWriter:
    """CSV or Parquet output, chosen by the target's suffix; CSV on stdout for standard output.

    Tables are encoded by a background thread (pyarrow releases the GIL), so writing one chunk
    overlaps evaluating the next; at most two chunks wait, which keeps memory bounded. The file is
    the output's temporary file: what becomes of it when the run ends is the run's business.
    """

    def __init__(self, output: Output):
        self.output, self.writer, self.sink = output, None, None
        self.parquet = not output.stdout and output.suffix in (".parquet", ".pq")
        self.queue: queue.Queue = queue.Queue(maxsize=2)
        self.failure: BaseException | None = None
        self.thread: threading.Thread | None = None

    def _open(self, schema: pa.Schema) -> None:
        import pyarrow.csv as pacsv
        import pyarrow.parquet as pq

        try:
            if self.parquet:
                # dictionary columns (addresses, names, verdicts, rules) are already compact as dictionary
                # indices, which compress little; the rest is left to snappy. Statistics are not written:
                # computing them costs more than all the encoding.
                dicts = [f.name for f in schema if pa.types.is_dictionary(f.type)]
                self.writer = pq.ParquetWriter(self.output.path, schema, write_statistics=False, use_dictionary=dicts,
                                               compression={f.name: "none" if f.name in dicts else "snappy" for f in schema})
            else:
                self.sink = sys.stdout.buffer if self.output.stdout else open(self.output.path, "wb")
                self.writer = pacsv.CSVWriter(self.sink, schema)
        except OSError as exc:
            raise InputError(self.output.problem(f"cannot write output: {exc.strerror or exc}")) from None

    def _drain(self) -> None:
        while (table := self.queue.get()) is not None:
            if self.failure is None:
                try:
                    self.writer.write_table(table)
                except BaseException as exc:  # noqa: BLE001 - handed to the main thread
                    self.failure = exc

    def _check(self) -> None:
        if self.failure is not None:
            failure, self.failure = self.failure, None
            if isinstance(failure, OSError) and not isinstance(failure, BrokenPipeError):
                raise InputError(self.output.problem(f"cannot write output: {failure.strerror or failure}"))
            raise failure

    def write(self, table: pa.Table) -> None:
        if self.writer is None:
            self._open(table.schema)
            self.thread = threading.Thread(target=self._drain, daemon=True)
            self.thread.start()
        self._check()
        self.queue.put(table)

    @property
    def empty(self) -> bool:
        """Nothing written yet: the file does not even have its header."""
        return self.writer is None

    def close(self, keep: bool) -> None:
        """Finish writing; ``keep``: the run succeeded, so a late write failure is reported."""
        if self.thread is not None:
            self.queue.put(None)
            self.thread.join()
        try:
            try:
                if self.writer is not None:
                    self.writer.close()  # writes what is buffered (a Parquet footer)
            finally:
                if self.sink is not None and self.sink is not sys.stdout.buffer:
                    self.sink.close()
        except OSError as exc:
            self.failure = self.failure or exc
        if keep:
            self._check()
