"""Exact header-space analysis (docs/analysis.md): lint, search, and the regions a header-space diff is built on.

Needs the optional `dd` package (CUDD): `pip install 'flowsim[analysis]'`. Nothing here is imported by
`flowsim --help`.
"""
from .lint import Finding, Incomplete, LintReport, lint
from .path import PathModel
from .search import Query, SearchResult, search
from .space import Box, Point, Space
from .units import Entry, Unit, build_units

__all__ = ["Box", "Entry", "Finding", "Incomplete", "LintReport", "PathModel", "Point", "Query", "SearchResult",
           "Space", "Unit", "build_units", "lint", "search"]
