"""The integer codes that the kernels and the Python around them share, defined once.

Plain integers and tuples only (numba reads them as compile-time constants); the name
tables beside them give each code its word in outputs. `flowsim.model.codes` wraps them
in enums for readable Python.
"""

# verdicts of a flow
ALLOW, DENY, UNMANAGED, AMBIGUOUS = 0, 1, 2, 3  # AMBIGUOUS: an address owned in several VPCs (an error row)
VERDICT_NAMES = ("allow", "deny", "unmanaged")  # by code; AMBIGUOUS rows carry an error instead

# deciding-rule codes of a side: the default rules first, then custom rule k as FIRST_CUSTOM + k
NO_RULE = -1  # the side does not apply (its address is not an interface's)
INTRA_ALLOW, INBOUND_DENY, OUTBOUND_ALLOW, OUTBOUND_DENY, HEALTH_CHECK_ALLOW = 0, 1, 2, 3, 4
DEFAULT_ALLOWS = (True, False, True, False, True)  # does each default rule allow, by code
FIRST_CUSTOM = len(DEFAULT_ALLOWS)

# direction of a flow-log record (endpoint mode) as the kernels take it; 0: not given (path mode)
DIR_NONE, DIR_INGRESS, DIR_EGRESS = 0, 1, 2

# the action a trace recorded for a record; 0: not recorded
ACTION_NONE, ACTION_ACCEPT, ACTION_REJECT = 0, 1, 2
ACTION_NAMES = ("", "ACCEPT", "REJECT")  # by code, as outputs write them

# IP protocol numbers the semantics single out
ICMP, TCP, UDP, ICMPV6 = 1, 6, 17, 58
PORTED = (TCP, UDP)  # protocols whose rules and flows carry ports
