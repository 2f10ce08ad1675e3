"""Datasets: FLOWS or TRACE named as a directory (searched recursively, hive-style ``key=value`` folders
included) or a glob of files, instead of one file.

Each file of a dataset is read by the reader of its own format, detected as for a single file, so a
dataset may mix CSV and Parquet, flow logs and captures. Files and folders whose names start with ``.``
or ``_`` are left out (``_SUCCESS`` markers, ``_temporary`` folders, flowsim's own temporary outputs).
Files are listed in natural order of their paths: digit runs compare as numbers, so ``hour=9`` comes
before ``hour=10``.
"""
from __future__ import annotations

import glob
import os
import re
from pathlib import Path

from ..errors import InputError, Problem
from .inputs import STDIN

_GLOB = re.compile(r"[*?\[]")
_DIGITS = re.compile(r"(\d+)")


def natural_key(path: str) -> tuple:
    """A sort key under which digit runs compare as numbers ("part-9" before "part-10")."""
    return tuple(int(part) if part.isdigit() else part for part in _DIGITS.split(path))


def _hidden(name: str) -> bool:
    return name.startswith(".") or name.startswith("_")


def is_dataset(path: str | os.PathLike) -> bool:
    """Whether `path` names a dataset (a directory, or a glob that is not itself an existing file)."""
    text = str(path)
    if text == STDIN:
        return False
    if os.path.isdir(text):
        return True
    return bool(_GLOB.search(text)) and not os.path.exists(text)


def dataset_files(path: str | os.PathLike, what: str = "dataset") -> list[str]:
    """The files of a dataset in natural order; a single file is a dataset of one. Errors name the path."""
    text = str(path)
    if os.path.isdir(text):
        found = []
        for folder, dirs, files in os.walk(text, followlinks=True):
            dirs[:] = [d for d in dirs if not _hidden(d)]
            found += [os.path.join(folder, f) for f in files if not _hidden(f)]
        if not found:
            raise InputError(Problem(f"the {what} directory holds no files", source=text))
    elif is_dataset(text):
        found = [p for p in glob.glob(text, recursive=True) if os.path.isfile(p) and not _hidden(os.path.basename(p))]
        if not found:
            raise InputError(Problem(f"no file matches this {what} pattern", source=text))
    else:
        if text == STDIN:
            raise InputError(Problem(f"a {what} cannot be read from standard input here", source="<stdin>"))
        if not os.path.exists(text):
            raise InputError(Problem(f"no such {what}", source=text))
        found = [text]
    return sorted(found, key=natural_key)


def dataset_root(path: str | os.PathLike) -> str:
    """The folder that a dataset's files are named relative to: the directory itself, or the part of a
    glob before its first wildcard (its folder)."""
    text = str(path)
    if os.path.isdir(text):
        return text
    match = _GLOB.search(text)
    head = text[: match.start()] if match else text
    return os.path.dirname(head) or "."


def relative_name(file: str, root: str) -> str:
    """A dataset file's path relative to the dataset's root, with forward slashes."""
    try:
        return Path(os.path.relpath(file, root)).as_posix()
    except ValueError:  # another drive
        return Path(file).as_posix()


__all__ = ["dataset_files", "dataset_root", "is_dataset", "natural_key", "relative_name"]
