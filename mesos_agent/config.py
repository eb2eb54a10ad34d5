"""What the agent core needs to know about itself; built by the runtime from flags and probes."""
from __future__ import annotations

from attrs import field, frozen

from mesos_agent.status import RetryPolicy
from mesos_common.messages import AgentInfo, AttributeValue
from mesos_common.resources import Resources

VERSION = "corral-0.1.0"


@frozen
class AgentConfig:
    """Identity, resources and timing knobs (Mesos flags' defaults unless noted).

    `port` is the agent's HTTP port (after binding, so never 0). Registration retries start
    at 1 s and double up to 1 min (Mesos `--registration_backoff_factor` / its max); after
    `registration_attempts` unanswered tries the runtime re-detects the master. Status
    updates are resent from 10 s doubling to 10 min, as Mesos (`RetryPolicy`).
    """

    hostname: str
    port: int
    resources: Resources
    work_dir: str
    attributes: dict[str, AttributeValue] = field(factory=dict)
    ip: str = "127.0.0.1"
    version: str = VERSION
    registration_backoff: RetryPolicy = RetryPolicy(initial=1.0, max=60.0)
    registration_attempts: int = 3
    status_retry: RetryPolicy = RetryPolicy()
    default_heartbeat_interval: float = 15.0
    max_missed_heartbeats: int = 3
    default_kill_grace: float = 3.0
    max_completed_tasks: int = 200
    checkpoint: bool = False  # emit Checkpoint effects (the runtime turns this on)
    switch_user: bool = True  # run tasks as their command's or framework's user (Mesos)
    default_user: str = "nobody"  # for a task and framework with no user ("": the agent's own)
    flags: dict[str, str] = field(factory=dict)
    containerizers: tuple[str, ...] = ("mesos",)  # the kinds of tasks it runs (see AgentInfo)
    executor_registration_timeout: float = 60.0  # a custom executor must subscribe by then
    executor_shutdown_grace: float = 5.0  # SHUTDOWN to SIGKILL of a custom executor
    executor_reregistration_timeout: float = 2.0  # after a restart, for executors to re-subscribe

    def agent_info(self) -> AgentInfo:
        return AgentInfo(hostname=self.hostname, port=self.port, resources=self.resources,
                         attributes=dict(self.attributes), containerizers=self.containerizers)
