"""Task states and the one table of legal transitions between them.

Every component that changes a task's state (agent, master, simulation checks) asks
`can_transition` here, so the rule lives in exactly one place (cf. h11's _state.py).
"""
from __future__ import annotations

STAGING = "TASK_STAGING"
STARTING = "TASK_STARTING"
RUNNING = "TASK_RUNNING"
KILLING = "TASK_KILLING"
FINISHED = "TASK_FINISHED"
FAILED = "TASK_FAILED"
KILLED = "TASK_KILLED"
ERROR = "TASK_ERROR"
LOST = "TASK_LOST"
DROPPED = "TASK_DROPPED"
UNREACHABLE = "TASK_UNREACHABLE"
GONE = "TASK_GONE"
GONE_BY_OPERATOR = "TASK_GONE_BY_OPERATOR"
UNKNOWN = "TASK_UNKNOWN"

ALL_STATES: frozenset[str] = frozenset({
    STAGING, STARTING, RUNNING, KILLING, FINISHED, FAILED, KILLED, ERROR, LOST,
    DROPPED, UNREACHABLE, GONE, GONE_BY_OPERATOR, UNKNOWN,
})
TERMINAL_STATES: frozenset[str] = frozenset({
    FINISHED, FAILED, KILLED, ERROR, LOST, DROPPED, GONE, GONE_BY_OPERATOR,
})
ACTIVE_STATES: frozenset[str] = frozenset({STAGING, STARTING, RUNNING, KILLING})

_ENDINGS = TERMINAL_STATES | {UNREACHABLE}

# from-state -> states it may move to. Terminal states go nowhere; UNREACHABLE may come
# back (the agent re-registered) or end.
TRANSITIONS: dict[str, frozenset[str]] = {
    STAGING: frozenset({STARTING, RUNNING, KILLING}) | _ENDINGS,
    STARTING: frozenset({RUNNING, KILLING}) | _ENDINGS,
    RUNNING: frozenset({RUNNING, KILLING}) | _ENDINGS,  # RUNNING->RUNNING: health changes
    KILLING: frozenset({KILLING}) | _ENDINGS,
    UNREACHABLE: frozenset({STAGING, STARTING, RUNNING, KILLING}) | TERMINAL_STATES,
    UNKNOWN: ALL_STATES,
    **{s: frozenset() for s in TERMINAL_STATES},
}

# What a framework without the PARTITION_AWARE capability sees instead (Mesos semantics).
NOT_PARTITION_AWARE: dict[str, str] = {
    DROPPED: LOST, UNREACHABLE: LOST, GONE: LOST, GONE_BY_OPERATOR: LOST, UNKNOWN: LOST,
}


def is_terminal(state: str) -> bool:
    return state in TERMINAL_STATES


def can_transition(old: str, new: str) -> bool:
    return new in TRANSITIONS.get(old, frozenset())


def for_framework(state: str, partition_aware: bool) -> str:
    """The state as the framework should see it."""
    return state if partition_aware else NOT_PARTITION_AWARE.get(state, state)
