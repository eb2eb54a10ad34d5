"""The agent's launch helper: a process of its own that starts the agent's process tasks and
reaps them, so none of that work queues for the agent's GIL.

In-process launcher threads shared the GIL with the agent's event loop: every syscall of a
launch (a dozen: sandbox, output files, cgroups, the spawn) gave the GIL up and waited to
get it back behind the loop, and the loop waited behind them. Mesos forks its containers
through helper processes too (`mesos-containerizer launch`).

    python -m mesos_agent.containerizer.launch_helper FD ISOLATOR_SPEC LAUNCH_LOG

FD is the helper's end of a stream socket pair with the agent; msgpack values go both ways:

    agent -> helper   [LAUNCH, batch, [LaunchSpec.as_list(), ...]]   start these tasks
                      [REOPEN]                     the agent rewrote the launch log: reopen it
    helper -> agent   [STARTED, batch, [[pid, start_time] | "why it failed", ...]]
                      [OOM, [pid, ...]]     their memory groups ran out: the tasks were killed
                      [EXITED, [[pid, return code], ...]]        (negative: the signal)

The helper is the tasks' parent: it reaps them and reports their exits, in order after their
STARTED. Where the isolator can say when a task's memory group runs out (cgroup v1's OOM
notifier: an eventfd per task), the helper watches it from its answer on, kills the whole
task at once (Mesos destroys the container, even when the kernel's OOM killer took only one
of its processes) and says OOM before the task's EXITED. It appends each batch's launches to
the agent's launch log before it answers, so a restarted agent finds tasks whose checkpoint
it missed. When the agent goes away (EOF) it exits and leaves the tasks running, as the
agent's own death would: a restarted agent reattaches to them (`ProcessContainerizer.recover`).
"""
from __future__ import annotations

import json
import logging
import os
import selectors
import signal
import socket
import sys
from typing import Any

import msgpack

from mesos_agent.containerizer.batch import LaunchSpec, start_batch
from mesos_agent.containerizer.isolation import Isolator, Prepared, from_spec, task_key
from mesos_agent.containerizer.spawn import forget
from mesos_common.launch_log import Launch, launched_lines, open_append

log = logging.getLogger("mesos_agent.launch_helper")

LAUNCH, REOPEN, STARTED, EXITED, OOM = "launch", "reopen", "started", "exited", "oom"
READ_SIZE = 1 << 18


class Helper:
    def __init__(self, sock: socket.socket, isolator: Isolator, log_path: str) -> None:
        self.sock = sock
        self.isolator = isolator
        self.log_path = log_path
        self._log_fd = open_append(log_path)
        self._unpacker = msgpack.Unpacker(raw=False)
        self._children: set[int] = set()
        self._sel = selectors.DefaultSelector()
        self._oom_fds: dict[int, int] = {}  # pid -> its memory group's OOM eventfd

    def run(self) -> int:
        """Serve the agent until it goes away; 0."""
        wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGCHLD, lambda signum, frame: None)  # wakes the select
        sel = self._sel
        sel.register(self.sock, selectors.EVENT_READ)
        sel.register(wake_r, selectors.EVENT_READ)
        while True:
            for key, _ in sel.select():
                if key.fileobj == wake_r:
                    _drain(wake_r)
                    continue
                if key.data is not None:
                    self._out_of_memory(*key.data)
                    continue
                data = self.sock.recv(READ_SIZE)
                if not data:
                    return 0
                self._unpacker.feed(data)
                for msg in self._unpacker:
                    self._handle(msg)
            self._reap()

    def _handle(self, msg: Any) -> None:
        try:
            kind = msg[0]
            if kind == LAUNCH:
                self._launch(msg[1], [LaunchSpec.from_list(s) for s in msg[2]])
            elif kind == REOPEN:
                os.close(self._log_fd)
                self._log_fd = open_append(self.log_path)
            else:
                log.error("unknown request %r from the agent", kind)
        except (TypeError, ValueError, IndexError, KeyError) as e:
            log.error("malformed request from the agent (%s): %.200r", e, msg)

    def _launch(self, batch: int, specs: list[LaunchSpec]) -> None:
        try:
            out = start_batch(specs, self.isolator, self._record)
        except Exception as e:  # never leave the agent waiting for an answer
            log.exception("launching a batch of %d failed", len(specs))
            out = [f"launch helper failed: {type(e).__name__}: {e}"] * len(specs)
        answers: list[Any] = []
        for o in out:
            if isinstance(o, Launch):
                self._children.add(o.pid)
                answers.append([o.pid, o.start_time])
            else:
                answers.append(o)
        self._send([STARTED, batch, answers])
        for o in out:  # after the answer: the agent's launches do not wait for this
            if isinstance(o, Launch):
                self._watch_oom(o)
        self._reap()

    def _watch_oom(self, entry: Launch) -> None:
        watch = getattr(self.isolator, "oom_events", None)
        if watch is None or entry.pid not in self._children:
            return
        prepared = self.isolator.locate(task_key(entry.task_id, entry.sandbox))
        fd = watch(prepared)
        if fd is not None:
            self._oom_fds[entry.pid] = fd
            self._sel.register(fd, selectors.EVENT_READ, (entry.pid, prepared))

    def _unwatch_oom(self, pid: int) -> None:
        fd = self._oom_fds.pop(pid, None)
        if fd is not None:
            self._sel.unregister(fd)
            os.close(fd)

    def _out_of_memory(self, pid: int, prepared: Prepared) -> None:
        """A task's memory group ran out: kill all of it, tell the agent."""
        self._unwatch_oom(pid)
        log.warning("task pid %d: its memory group ran out; killing the task", pid)
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        kill = getattr(self.isolator, "kill", None)
        if kill is not None:
            kill(prepared)
        self._send([OOM, [pid]])

    def _record(self, entries: list[Launch]) -> None:
        try:
            os.write(self._log_fd, launched_lines(entries))
        except OSError as e:
            log.error("cannot append %d launch(es) to %s: %s", len(entries), self.log_path, e)

    def _reap(self) -> None:
        """Reap every child that has ended and report the tasks among them."""
        ended = []
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            code = os.waitstatus_to_exitcode(status)
            forget(pid, code)
            if pid in self._children:
                self._children.discard(pid)
                self._unwatch_oom(pid)
                ended.append([pid, code])
        if ended:
            self._send([EXITED, ended])

    def _send(self, msg: Any) -> None:
        self.sock.sendall(msgpack.packb(msg))


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 4096):
            pass
    except BlockingIOError:
        pass


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s mesos-agent launch-helper %(levelname)s %(message)s")
    if len(args) != 3:
        print("usage: python -m mesos_agent.containerizer.launch_helper FD ISOLATOR_SPEC "
              "LAUNCH_LOG", file=sys.stderr)
        return 2
    fd, spec, log_path = args
    try:
        sock = socket.socket(fileno=int(fd))
        isolator = from_spec(json.loads(spec))
    except (ValueError, OSError) as e:
        print(f"launch helper: {e}", file=sys.stderr)
        return 2
    try:
        return Helper(sock, isolator, log_path).run()
    except (BrokenPipeError, ConnectionResetError):
        return 0  # the agent went away while we answered


if __name__ == "__main__":
    sys.exit(main())
