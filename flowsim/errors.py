"""Error types and exit statuses shared by every layer of flowsim."""
from __future__ import annotations

import enum
from dataclasses import dataclass


class ExitStatus(enum.IntEnum):
    """Process exit codes of the ``flowsim`` command (docs/commands.md)."""

    OK = 0
    ERROR = 1
    BAD_INPUT = 2
    POLICY_FAILED = 3  # a check --expect, a policy test or a lint --fail-on found what it was told to fail on


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input: where it is, what it is about, and what is wrong."""

    message: str
    subject: str = ""
    source: str = ""
    line: int | None = None

    def __str__(self) -> str:
        where = self.source
        if where and self.line is not None:
            where = f"{where}:{self.line}"
        elif not where and self.line is not None:
            where = f"line {self.line}"
        text = f"{self.subject}: {self.message}" if self.subject else self.message
        return f"{where}: {text}" if where else text


class InputError(Exception):
    """Bad user input: one or more problems, reported together, exit status 2."""

    def __init__(self, problems: list[Problem] | Problem | str):
        if isinstance(problems, (Problem, str)):
            problems = [problems if isinstance(problems, Problem) else Problem(problems)]
        self.problems: list[Problem] = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class ConfigError(InputError):
    """A network configuration that cannot be loaded or would be refused by the cloud."""
