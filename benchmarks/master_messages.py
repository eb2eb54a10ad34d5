"""Master message handling against a raw pyzmq ROUTER echo loop, in the same run.

`--peers` framework connections each keep `--window` Reconcile requests in flight against a
real master; every Reconcile of an unknown task is answered by the master core with an Update
(TASK_LOST), so each message is decoded, dispatched through the core, answered and encoded.
The baseline is a bare ROUTER process that msgpack-decodes each frame and echoes a reply.
Reported: messages handled per second (requests + replies count once per round trip) and the
p99 of request→reply latency. The clients (one Python process driving every peer) do the same
work in both runs: send, receive, a byte test on the reply.

With `--secure` the master runs a second time with CURVE and framework authentication on
(`--zmq_curve --authenticate_frameworks`; the clients encrypt to its key and authenticate
before subscribing), and the secure run's throughput is reported beside the plain one.

    python -m benchmarks.master_messages [--peers 20] [--seconds 10] [--window 32] [--secure]
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import zmq
import zmq.auth

from benchmarks._common import finish, percentile, raw_server, say
from mesos_common import codec
from mesos_common import messages as m
from mesos_common.daemons import LocalCluster

ECHO_SERVER = r"""
import zmq, msgpack
ctx = zmq.Context(); s = ctx.socket(zmq.ROUTER)
s.setsockopt(zmq.RCVHWM, 0); s.setsockopt(zmq.SNDHWM, 0)
s.bind("tcp://127.0.0.1:0"); print(s.getsockopt_string(zmq.LAST_ENDPOINT), flush=True)
reply = msgpack.packb({"type": "Heartbeat", "v": 1})
while True:
    peer, body = s.recv_multipart()
    msgpack.unpackb(body, raw=False)
    s.send_multipart([peer, reply])
"""


_UPDATE = b"\xa4type\xa6Update"  # msgpack of the "type": "Update" entry


def is_update(frame: bytes) -> bool:
    """A byte search, not a decode: the client must cost the same in both runs (the raw echo's
    client does not decode either), or the client, not the master, sets the pace."""
    return _UPDATE in frame


SECRET = "bench-secret"


def subscribe(ctx: zmq.Context, endpoint: str, i: int, server_key: bytes | None = None
              ) -> tuple[zmq.Socket, str]:
    s = ctx.socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    if server_key is not None:
        s.curve_serverkey = server_key
        s.curve_publickey, s.curve_secretkey = zmq.curve_keypair()
    s.connect(endpoint)
    sub = codec.encode(m.Subscribe(m.FrameworkInfo(name=f"bench-{i}", user="bench")))
    if server_key is not None:
        s.send_multipart([codec.encode(m.Authenticate("bench", SECRET)), sub])
    else:
        s.send(sub)
    while True:
        if not s.poll(10_000):
            raise SystemExit("no Subscribed within 10 s")
        msg = codec.decode(s.recv())
        if isinstance(msg, m.Subscribed):
            return s, msg.framework_id


def drive(socks: list[zmq.Socket], requests: list[bytes], is_reply, seconds: float,
          window: int) -> tuple[int, list[float]]:
    """Keep `window` requests in flight per socket for `seconds`; return (replies, latencies)."""
    poller = zmq.Poller()
    inflight: dict[int, list[float]] = {}
    for k, s in enumerate(socks):
        poller.register(s, zmq.POLLIN)
        inflight[k] = []
        for _ in range(window):
            inflight[k].append(time.perf_counter())
            s.send(requests[k])
    done, lat = 0, []
    index = {s: k for k, s in enumerate(socks)}
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        for s, _ in poller.poll(100):
            k = index[s]
            while True:
                try:
                    frame = s.recv(zmq.NOBLOCK)
                except zmq.Again:
                    break
                if not is_reply(frame):
                    continue
                now = time.perf_counter()
                lat.append(now - inflight[k].pop(0))
                done += 1
                inflight[k].append(now)
                s.send(requests[k])
    return done, lat


def measure_master(peers: int, seconds: float, window: int, secure: bool = False
                   ) -> tuple[float, float]:
    with tempfile.TemporaryDirectory(prefix="corral-bench-") as tmp:
        cluster = LocalCluster(Path(tmp), log_level="WARNING")
        ctx = zmq.Context()
        try:
            extra: list[str] = []
            if secure:
                creds = Path(tmp) / "credentials.json"
                creds.write_text(json.dumps({"credentials": [
                    {"principal": "bench", "secret": SECRET}]}))
                extra = ["--zmq_curve", f"--credentials={creds}", "--authenticate_frameworks",
                         "--authenticate_agents"]
            master = cluster.start_master("--heartbeat_interval=30secs", *extra)
            key = zmq.auth.load_certificate(master.field("curve_public_cert"))[0] \
                if secure else None
            subs = [subscribe(ctx, master.field("zmq"), i, key) for i in range(peers)]
            requests = [codec.encode(m.Reconcile(fid, (m.ReconcileTask("nope"),)))
                        for _, fid in subs]
            say(f"master{' (CURVE + authentication)' if secure else ''}: {peers} frameworks x "
                f"{window} Reconcile requests in flight")
            done, lat = drive([s for s, _ in subs], requests, is_update, seconds, window)
            return done / seconds, percentile(lat, 99) * 1000
        finally:
            ctx.destroy(linger=0)
            cluster.stop()


def measure_raw(peers: int, seconds: float, window: int) -> tuple[float, float]:
    ctx = zmq.Context()
    with raw_server(ECHO_SERVER) as (_, endpoint):
        try:
            socks = []
            for _ in range(peers):
                s = ctx.socket(zmq.DEALER)
                s.setsockopt(zmq.LINGER, 0)
                s.connect(endpoint)
                socks.append(s)
            time.sleep(0.3)
            request = codec.encode(m.Reconcile("f", (m.ReconcileTask("nope"),)))
            say(f"raw ROUTER echo: {peers} peers x {window} requests in flight")
            done, lat = drive(socks, [request] * peers, lambda f: True, seconds, window)
            return done / seconds, percentile(lat, 99) * 1000
        finally:
            ctx.destroy(linger=0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--peers", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--window", type=int, default=32)
    ap.add_argument("--secure", action="store_true",
                    help="also measure the master with CURVE and authentication on")
    args = ap.parse_args()
    rate, p99 = measure_master(args.peers, args.seconds, args.window)
    say(f"master: {rate:,.0f} round trips/s, p99 {p99:.1f} ms")
    secure: dict[str, float] = {}
    if args.secure:
        s_rate, s_p99 = measure_master(args.peers, args.seconds, args.window, secure=True)
        say(f"master (CURVE + authentication): {s_rate:,.0f} round trips/s, "
            f"p99 {s_p99:.1f} ms, {s_rate / rate:.2f}x the plain master")
        secure = {"secure_msgs_per_s": round(s_rate), "secure_p99_ms": round(s_p99, 2),
                  "secure_vs_plain": round(s_rate / rate, 3)}
    raw, raw_p99 = measure_raw(args.peers, args.seconds, args.window)
    say(f"raw ROUTER echo: {raw:,.0f} round trips/s, p99 {raw_p99:.1f} ms")
    finish("master_messages", {"peers": args.peers, "window": args.window,
                               "msgs_per_s": round(rate), "p99_ms": round(p99, 2),
                               "raw_msgs_per_s": round(raw), "raw_p99_ms": round(raw_p99, 2),
                               "ratio": round(rate / raw, 3), **secure})


if __name__ == "__main__":
    main()
