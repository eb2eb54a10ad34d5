"""The allocator seam (Mesos include/mesos/allocator/allocator.hpp, with return values).

The master tells the allocator what exists (agents, frameworks, what they already use) and what
comes back (declined offers, finished tasks, with an optional refuse filter); `allocate(now)`
returns grants instead of calling back, so allocators are plain objects a test can drive.
Accounting rule shared by every implementation: a grant counts as allocated to its framework
until the master `recover`s it (offer declined/rescinded, task finished) or removes the agent or
the framework.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from attrs import frozen

from mesos_common.resources import Resources

AgentId = str
FrameworkId = str


@frozen
class OfferGrant:
    framework_id: FrameworkId
    agent_id: AgentId
    resources: Resources


class Allocator(Protocol):
    def add_agent(self, agent_id: AgentId, total: Resources,
                  used: Mapping[FrameworkId, Resources], keep_filters: bool = False) -> None:
        """A (re-)registered agent; `used` is what frameworks' running tasks hold on it.
        `keep_filters`: an agent still here is rebooked with its refuse filters kept."""

    def deactivate_agent(self, agent_id: AgentId) -> None:
        """No offers of the agent (Mesos deactivateSlave: drained or deactivated); what
        runs there stays allocated. Kept when `add_agent` rebooks an agent still here; dropped
        by `remove_agent`."""

    def activate_agent(self, agent_id: AgentId) -> None: ...

    def remove_agent(self, agent_id: AgentId) -> None:
        """The agent is gone: everything on it stops counting for anyone."""

    def add_framework(self, framework_id: FrameworkId, roles: frozenset[str],
                      used: Mapping[AgentId, Resources], active: bool) -> None:
        """A new framework, with what it already holds on known agents. For a known one
        (it re-subscribed) only its roles and activity are updated."""

    def remove_framework(self, framework_id: FrameworkId) -> None:
        """The framework is gone: all its allocations are freed."""

    def set_gpu_capable(self, framework_id: FrameworkId, capable: bool) -> None:
        """Whether the framework has the GPU_RESOURCES capability: agents with GPUs are
        offered only to those that have it (Mesos), so GPUs are not taken by frameworks
        that cannot use them. A framework is not until told."""

    def activate_framework(self, framework_id: FrameworkId) -> None: ...

    def deactivate_framework(self, framework_id: FrameworkId) -> None:
        """No offers until activated again; what it holds stays allocated."""

    def recover(self, framework_id: FrameworkId, agent_id: AgentId, resources: Resources,
                refuse_seconds: float | None, now: float) -> None:
        """Resources come back; with `refuse_seconds` the framework is not offered this agent
        again before `now + refuse_seconds`."""

    def convert(self, agent_id: AgentId, consumed: Resources, converted: Resources,
                framework_id: FrameworkId | None = None) -> None:
        """A reservation made or undone on the agent: `consumed` becomes `converted` (the same
        quantities, other roles) in its total, and in what `framework_id` holds there (an
        offer operation) or in its free part (an operator's)."""

    def suppress(self, framework_id: FrameworkId, roles: frozenset[str]) -> None: ...

    def revive(self, framework_id: FrameworkId, roles: frozenset[str]) -> None:
        """Undo suppress for `roles` and clear the framework's refuse filters."""

    def allocate(self, now: float,
                 agents: Iterable[AgentId] | None = None) -> list[OfferGrant]:
        """Hand out unallocated resources (of `agents`, or of all agents)."""

    def update_weights(self, weights: Mapping[str, float]) -> None:
        """Role weights (default 1): a role's dominant share counts divided by its weight."""

    def set_quota(self, role: str, guarantee: Resources | None) -> None:
        """A role's guaranteed minimum (scalars); None removes it."""

    def roles_info(self) -> list[dict[str, Any]]:
        """Per role: name, weight, quota and allocated (milli-unit quantities), frameworks."""

    def allocated(self, agent_id: AgentId) -> Mapping[FrameworkId, Resources]:
        """What each framework holds on the agent (offers + tasks)."""
