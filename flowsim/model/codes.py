"""The kernels' shared codes as enums, for Python that names what a code means."""
from __future__ import annotations

from enum import IntEnum

from ..kernels import codes as C


class VerdictCode(IntEnum):
    """A flow's verdict as the kernels return it."""

    ALLOW = C.ALLOW
    DENY = C.DENY
    UNMANAGED = C.UNMANAGED
    AMBIGUOUS = C.AMBIGUOUS

    @property
    def word(self) -> str:
        """The verdict as outputs write it (an ambiguous row has none: it is an error)."""
        return C.VERDICT_NAMES[self] if self != VerdictCode.AMBIGUOUS else ""


class DefaultRule(IntEnum):
    """The default rules layered around the custom rules, by deciding-rule code."""

    INTRA_GROUP_ALLOW = C.INTRA_ALLOW
    INBOUND_DENY = C.INBOUND_DENY
    OUTBOUND_ALLOW = C.OUTBOUND_ALLOW
    OUTBOUND_DENY = C.OUTBOUND_DENY
    HEALTH_CHECK_ALLOW = C.HEALTH_CHECK_ALLOW

    @property
    def rule_name(self) -> str:
        """The name outputs give the rule, e.g. ``default:inbound-deny``."""
        return "default:" + self.name.lower().replace("_", "-")

    @property
    def allows(self) -> bool:
        return C.DEFAULT_ALLOWS[self]


class RecordedAction(IntEnum):
    """The action a trace recorded for a record."""

    NONE = C.ACTION_NONE
    ACCEPT = C.ACTION_ACCEPT
    REJECT = C.ACTION_REJECT

    @property
    def word(self) -> str:
        return C.ACTION_NAMES[self]
