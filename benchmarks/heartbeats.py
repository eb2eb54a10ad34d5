"""Heartbeat messages the master handles per second, against a raw pyzmq ROUTER loop.

Real master process; `--agents` DEALER sockets register as agents, then all of them send
`--messages` Heartbeats as fast as they can. The figure is messages / time until the master's
`master/messages_heartbeat` counter has counted them all. Baseline in the same run: a bare
ROUTER process that only receives and msgpack-decodes the same frames.

    python -m benchmarks.heartbeats [--agents 100] [--messages 200000]
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
import urllib.request
from pathlib import Path

import zmq

from benchmarks._common import finish, raw_server, say
from mesos_common import codec
from mesos_common import messages as m
from mesos_common.daemons import LocalCluster
from mesos_common.resources import Resources

RAW_SERVER = r"""
import sys, time, zmq, msgpack
n = int(sys.argv[1])
ctx = zmq.Context(); s = ctx.socket(zmq.ROUTER); s.setsockopt(zmq.RCVHWM, 0)
s.bind("tcp://127.0.0.1:0"); print(s.getsockopt_string(zmq.LAST_ENDPOINT), flush=True)
count = 0
while count < n:
    peer, body = s.recv_multipart()
    msg = msgpack.unpackb(body, raw=False)
    if msg.get("type") == "Heartbeat":
        count += 1
print("done", time.perf_counter(), flush=True)
"""


def connect_agents(ctx: zmq.Context, endpoint: str, n: int, register: bool) -> list[zmq.Socket]:
    socks = []
    info = m.AgentInfo(hostname="bench", port=1, resources=Resources.parse("cpus:1;mem:128"))
    for i in range(n):
        s = ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.IDENTITY, f"bench-{i}".encode())
        s.setsockopt(zmq.SNDHWM, 0)
        s.setsockopt(zmq.LINGER, 0)
        s.connect(endpoint)
        if register:
            s.send(codec.encode(m.RegisterAgent(agent_info=info)))
        socks.append(s)
    if register:
        for s in socks:
            while True:
                if not s.poll(10_000):
                    raise SystemExit("an agent did not get AgentRegistered within 10 s")
                if isinstance(codec.decode(s.recv()), m.AgentRegistered):
                    break
    return socks


def blast(socks: list[zmq.Socket], total: int) -> float:
    frame = codec.encode(m.Heartbeat())
    t0 = time.perf_counter()
    for i in range(total):
        socks[i % len(socks)].send(frame)
    return t0


def counter(url: str) -> float:
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())["master/messages_heartbeat"]


def measure_master(n_agents: int, total: int) -> float:
    with tempfile.TemporaryDirectory(prefix="corral-bench-") as tmp:
        cluster = LocalCluster(Path(tmp), log_level="WARNING")
        ctx = zmq.Context()
        try:
            master = cluster.start_master("--heartbeat_interval=30secs",
                                          "--agent_ping_timeout=60secs")
            socks = connect_agents(ctx, master.field("zmq"), n_agents, register=True)
            url = f"http://{cluster.master_addr}/metrics/snapshot"
            start = counter(url)
            say(f"master: {n_agents} agents registered; sending {total} heartbeats")
            t0 = blast(socks, total)
            deadline = time.monotonic() + 300
            while counter(url) < start + total:
                if time.monotonic() > deadline:
                    raise SystemExit("master did not count all heartbeats within 300 s")
                time.sleep(0.02)
            return total / (time.perf_counter() - t0)
        finally:
            ctx.destroy(linger=0)
            cluster.stop()


def measure_raw(n_agents: int, total: int) -> float:
    ctx = zmq.Context()
    with raw_server(RAW_SERVER, str(total)) as (proc, endpoint):
        try:
            socks = connect_agents(ctx, endpoint, n_agents, register=False)
            time.sleep(0.5)  # let every connection finish its handshake
            say(f"raw ROUTER: sending {total} heartbeats")
            t0 = blast(socks, total)
            assert proc.stdout is not None
            line = proc.stdout.readline().split()
            if not line or line[0] != "done":
                raise SystemExit("raw server failed")
            return total / (float(line[1]) - t0)
        finally:
            ctx.destroy(linger=0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--agents", type=int, default=100)
    ap.add_argument("--messages", type=int, default=200_000)
    args = ap.parse_args()
    master = measure_master(args.agents, args.messages)
    say(f"master: {master:,.0f} msgs/s")
    raw = measure_raw(args.agents, args.messages)
    say(f"raw ROUTER + msgpack: {raw:,.0f} msgs/s")
    finish("heartbeats", {"agents": args.agents, "messages": args.messages,
                          "msgs_per_s": round(master), "raw_msgs_per_s": round(raw),
                          "ratio": round(master / raw, 3)})


if __name__ == "__main__":
    main()
