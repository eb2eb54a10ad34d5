"""Wire messages: one frozen attrs class per message type.

Each message travels as one msgpack map `{"type": <class name>, "v": <version>, ...fields}`
(see codec.py). Ids are plain strings on the wire. Nested records (TaskInfo, Offer, ...) are
attrs classes too; `Resources` travels in the Mesos JSON list form.
"""
from __future__ import annotations

import attrs
from attrs import field, frozen

from mesos_common import task_states
from mesos_common.resources import Resources

PROTOCOL_VERSION = 1
AttributeValue = str | float


def _state(_inst: object, _attr: attrs.Attribute, value: str) -> None:
    if value not in task_states.ALL_STATES:
        raise ValueError(f"unknown task state {value!r}")


def _non_empty(_inst: object, attr: attrs.Attribute, value: str) -> None:
    if not value:
        raise ValueError(f"{attr.name} must not be empty")


# ---------------------------------------------------------------- nested records

@frozen
class URI:
    """Mesos CommandInfo.URI: what the agent's fetcher puts into the sandbox before the task
    starts. `extract` is ignored when `executable`; `output_file` is a path relative to the
    sandbox (Marathon's `destPath`)."""

    value: str = field(validator=_non_empty)
    executable: bool = False
    extract: bool = True
    cache: bool = False
    output_file: str | None = None


@frozen
class CommandInfo:
    value: str = ""
    shell: bool = True
    arguments: tuple[str, ...] = ()
    environment: dict[str, str] = field(factory=dict)
    user: str | None = None
    uris: tuple[URI, ...] = ()


@frozen
class PortMapping:
    host_port: int
    container_port: int
    protocol: str = "tcp"


@frozen
class Volume:
    container_path: str
    host_path: str = ""
    mode: str = "RW"


@frozen
class DockerInfo:
    image: str
    network: str = "HOST"
    port_mappings: tuple[PortMapping, ...] = ()
    privileged: bool = False
    parameters: tuple[tuple[str, str], ...] = ()
    force_pull_image: bool = False


@frozen
class ContainerInfo:
    type: str = "MESOS"
    docker: DockerInfo | None = None
    volumes: tuple[Volume, ...] = ()


@frozen
class HealthCheck:
    """A Mesos-native health check the agent runs: `type` COMMAND (`command`), HTTP
    (`port`, `path`, `scheme`; 2xx/3xx = healthy) or TCP (`port` accepts). Failures in the
    first `grace_period_seconds` do not count; `consecutive_failures` kill the task."""

    type: str = field(validator=attrs.validators.in_({"COMMAND", "HTTP", "TCP"}))
    command: CommandInfo | None = None
    port: int | None = None
    path: str = "/"
    scheme: str = "http"
    delay_seconds: float = 15.0
    interval_seconds: float = 10.0
    timeout_seconds: float = 20.0
    consecutive_failures: int = 3
    grace_period_seconds: float = 10.0


@frozen
class ExecutorInfo:
    """A custom executor: a process the agent starts once per (framework, executor id) and
    hands the tasks that name it (over the v1 executor API). Its own `resources` are held
    for as long as it runs, beside its tasks'."""

    executor_id: str = field(validator=_non_empty)
    command: CommandInfo
    resources: Resources = field(factory=Resources)
    name: str = ""
    framework_id: str = ""
    data: bytes | None = None


@frozen
class TaskInfo:
    name: str
    task_id: str = field(validator=_non_empty)
    agent_id: str
    resources: Resources
    command: CommandInfo | None = None
    container: ContainerInfo | None = None
    kill_grace_period: float | None = None
    labels: dict[str, str] = field(factory=dict)
    data: bytes | None = None
    health_check: HealthCheck | None = None
    executor: ExecutorInfo | None = None  # None: a command task (its own executor)


@frozen
class TaskStatus:
    task_id: str
    state: str = field(validator=_state)
    agent_id: str | None = None
    message: str = ""
    reason: str | None = None
    source: str = "SOURCE_EXECUTOR"
    timestamp: float = 0.0
    uuid: bytes | None = None
    healthy: bool | None = None
    data: bytes | None = None  # a custom executor's payload, passed through untouched
    executor_id: str | None = None  # the custom executor that sent it


@frozen
class FrameworkInfo:
    name: str
    user: str = ""
    id: str | None = None
    roles: tuple[str, ...] = ("*",)
    failover_timeout: float = 0.0
    hostname: str = ""
    capabilities: tuple[str, ...] = ()
    checkpoint: bool = False
    principal: str | None = None


@frozen
class AgentInfo:
    hostname: str
    port: int
    resources: Resources
    attributes: dict[str, AttributeValue] = field(factory=dict)
    # The containerizers the agent runs ("mesos", "docker", "sim"); () = not said.
    containerizers: tuple[str, ...] = ()


@frozen
class Offer:
    id: str
    framework_id: str
    agent_id: str
    hostname: str
    resources: Resources
    attributes: dict[str, AttributeValue] = field(factory=dict)
    containerizers: tuple[str, ...] = ()  # the agent's (AgentInfo.containerizers)


@frozen
class InverseOffer:
    """The master asks for an agent back (Mesos InverseOffer): it becomes unavailable at
    `start` (maintenance or a drain) and frameworks should move what runs there by then."""

    id: str
    framework_id: str
    agent_id: str
    hostname: str
    start: float  # wall-clock seconds; the master kills what still runs there from then
    duration: float | None = None  # None: unknown / until the operator says otherwise


@frozen
class Operation:
    """An ACCEPT operation: LAUNCH `tasks`, or RESERVE / UNRESERVE `resources` (Mesos's dynamic
    reservations: the resources carry the role they are, or were, reserved to)."""

    type: str = field(validator=attrs.validators.in_({"LAUNCH", "RESERVE", "UNRESERVE"}))
    tasks: tuple[TaskInfo, ...] = ()
    resources: Resources = field(factory=Resources.empty)


@frozen
class ReconcileTask:
    task_id: str
    agent_id: str | None = None


@frozen
class TaskRecord:
    """A task as an agent reports it when re-registering."""

    framework_id: str
    task: TaskInfo
    state: str = field(validator=_state)
    healthy: bool | None = None


# ---------------------------------------------------------------- both directions

@frozen
class Heartbeat:
    """Sent both ways at a fixed interval; silence past a timeout means the peer is gone."""


@frozen
class ProtocolError:
    """Reply to a frame that could not be decoded or a message not allowed now."""

    message: str
    in_reply_to: str = ""


# ---------------------------------------------------------------- agent or framework -> master

@frozen
class Authenticate:
    """Proves the sender's principal; the transport sends it just before each registration
    or subscription of a peer that has a credential. Over CURVE the secret travels
    encrypted; it never appears in a repr."""

    principal: str
    secret: str = field(repr=False)


# ---------------------------------------------------------------- agent -> master

@frozen
class RegisterAgent:
    agent_info: AgentInfo
    version: str = ""


@frozen
class ReregisterAgent:
    agent_id: str
    agent_info: AgentInfo
    tasks: tuple[TaskRecord, ...] = ()
    frameworks: tuple[FrameworkInfo, ...] = ()
    version: str = ""
    reserved: Resources = field(factory=Resources.empty)  # its checkpointed dynamic reservations


@frozen
class StatusUpdate:
    framework_id: str
    status: TaskStatus


@frozen
class UnregisterAgent:
    agent_id: str


@frozen
class ExecutorExited:
    """A custom executor ended (`status`: its exit code, or -signal): its tasks were failed
    by the agent, and the master frees the executor's own resources."""

    framework_id: str
    agent_id: str
    executor_id: str
    status: int


# ---------------------------------------------------------------- master -> agent

@frozen
class AgentRegistered:
    agent_id: str
    master_id: str
    heartbeat_interval: float
    epoch: float = 0.0  # this admission's stamp; RunTasks carry it (see RunTask)


@frozen
class AgentReregistered:
    agent_id: str
    master_id: str
    heartbeat_interval: float
    epoch: float = 0.0


@frozen
class RunTask:
    """`epoch` is the agent's admission stamp when the master sent it: a copy delayed past a
    re-registration (after which the master may have reported the task lost) is refused."""

    framework: FrameworkInfo
    task: TaskInfo
    epoch: float = 0.0


@frozen
class KillTask:
    framework_id: str
    task_id: str
    grace_period: float | None = None


@frozen
class StatusUpdateAck:
    framework_id: str
    agent_id: str
    task_id: str
    uuid: bytes


@frozen
class FrameworkMessage:
    """Opaque bytes between a scheduler and one of its executors, through the master and
    the executor's agent, both ways (best effort, as in Mesos: never retried)."""

    framework_id: str
    agent_id: str
    executor_id: str
    data: bytes


@frozen
class ShutdownExecutor:
    """Framework -> master -> agent: stop this executor (its tasks end with it)."""

    framework_id: str
    agent_id: str
    executor_id: str


@frozen
class ShutdownFramework:
    framework_id: str


@frozen
class ShutdownAgent:
    """The master will not take this agent back (e.g. its id is unknown): start afresh."""

    reason: str


@frozen
class CheckpointResources:
    """Master -> agent: the agent's dynamic reservations now (the whole set, durable in the
    master's registry); the agent checkpoints them and counts them in its total."""

    reserved: Resources


# ---------------------------------------------------------------- framework -> master

@frozen
class Subscribe:
    framework_info: FrameworkInfo


@frozen
class Accept:
    framework_id: str
    offer_ids: tuple[str, ...]
    operations: tuple[Operation, ...] = ()
    refuse_seconds: float | None = None


@frozen
class AcceptInverseOffers:
    """The framework agrees to give the agents back now: the master may kill its tasks."""

    framework_id: str
    inverse_offer_ids: tuple[str, ...]


@frozen
class DeclineInverseOffers:
    """The framework cannot give the agents back yet (the master waits for `start`)."""

    framework_id: str
    inverse_offer_ids: tuple[str, ...]


@frozen
class Decline:
    framework_id: str
    offer_ids: tuple[str, ...]
    refuse_seconds: float | None = None


@frozen
class Kill:
    framework_id: str
    task_id: str
    agent_id: str | None = None


@frozen
class Acknowledge:
    framework_id: str
    agent_id: str
    task_id: str
    uuid: bytes


@frozen
class Reconcile:
    framework_id: str
    tasks: tuple[ReconcileTask, ...] = ()


@frozen
class Revive:
    framework_id: str
    roles: tuple[str, ...] = ()


@frozen
class Suppress:
    framework_id: str
    roles: tuple[str, ...] = ()


@frozen
class Teardown:
    framework_id: str


# ---------------------------------------------------------------- master -> framework

@frozen
class Subscribed:
    framework_id: str
    master_id: str
    heartbeat_interval: float


@frozen
class Offers:
    offers: tuple[Offer, ...]


@frozen
class Rescind:
    offer_id: str


@frozen
class Update:
    status: TaskStatus
    framework_id: str = ""


@frozen
class InverseOffers:
    inverse_offers: tuple[InverseOffer, ...]


@frozen
class AgentLost:
    agent_id: str


@frozen
class ExecutorLost:
    """Master -> framework: one of its custom executors ended (Mesos's FAILURE event with
    an executor id)."""

    agent_id: str
    executor_id: str
    status: int


@frozen
class Error:
    """A fatal error for the framework (e.g. torn down); Mesos's ERROR event."""

    message: str


MESSAGE_TYPES: tuple[type, ...] = (
    Heartbeat, ProtocolError,
    RegisterAgent, ReregisterAgent, StatusUpdate, UnregisterAgent,
    AgentRegistered, AgentReregistered, RunTask, KillTask, StatusUpdateAck,
    ShutdownFramework, ShutdownAgent, CheckpointResources,
    Subscribe, Accept, Decline, Kill, Acknowledge, Reconcile, Revive, Suppress, Teardown,
    Subscribed, Offers, Rescind, Update, AgentLost, Error,
    Authenticate, ExecutorExited, FrameworkMessage, ShutdownExecutor, ExecutorLost,
    InverseOffers, AcceptInverseOffers, DeclineInverseOffers,
)
# Messages a master accepts from agents / from frameworks; anything else is a protocol error.
AGENT_TO_MASTER = (Heartbeat, RegisterAgent, ReregisterAgent, StatusUpdate, UnregisterAgent,
                   Authenticate, ExecutorExited, FrameworkMessage)
FRAMEWORK_TO_MASTER = (Heartbeat, Subscribe, Accept, Decline, Kill, Acknowledge, Reconcile,
                       Revive, Suppress, Teardown, Authenticate, FrameworkMessage,
                       ShutdownExecutor, AcceptInverseOffers, DeclineInverseOffers)
# What a peer with a credential precedes with an Authenticate (see transport.DealerTransport).
REGISTRATIONS = (RegisterAgent, ReregisterAgent, Subscribe)
