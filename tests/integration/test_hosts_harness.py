"""The multi-host harness's own verbs (tests/hosts): hosts reach each other over the bridge;
cuts, one-way blocks and loss stop traffic and healing restores it; the delay proxy
forwards intact bytes in order, late; a full work dir is full; a skewed clock is off; and
nothing outlives the network, not even after a crashed run."""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mesos_common.daemons import kill_group, python_module, spawn
from tests.hosts import netns
from tests.hosts.cluster import faketime_env
from tests.hosts.proxy import DelayProxy

REPO = str(Path(__file__).resolve().parents[2])
needs_netns = pytest.mark.skipif(bool(netns.available()), reason=netns.available() or "")

SERVER = ("import socket,sys; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET,"
          "socket.SO_REUSEADDR,1); s.bind((sys.argv[1],7000)); s.listen(); print('up',flush=True)\n"
          "while True:\n c,_=s.accept(); c.sendall(c.recv(100)); c.close()")


def test_the_delay_proxy_forwards_bytes_intact_in_order_and_late():
    async def main() -> tuple[bytes, float, float]:
        async def echo(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            while data := await r.read(1000):
                w.write(data)
                await w.drain()
            w.close()

        upstream = await asyncio.start_server(echo, "127.0.0.1", 0)
        port = upstream.sockets[0].getsockname()[1]
        proxy = DelayProxy(("127.0.0.1", port), delay=0.2, jitter=0.1, seed=3)
        front = await asyncio.start_server(proxy.handle, "127.0.0.1", 0)
        r, w = await asyncio.open_connection("127.0.0.1", front.sockets[0].getsockname()[1])
        t0 = time.monotonic()
        payload = b"".join(b"%05d" % i for i in range(2000))
        for i in range(0, len(payload), 997):
            w.write(payload[i:i + 997])
        await w.drain()
        w.write_eof()
        got = await asyncio.wait_for(r.read(), 10)
        elapsed = time.monotonic() - t0
        w.close()
        front.close()
        upstream.close()
        return got, elapsed, 2 * proxy.delay  # there and back

    got, elapsed, least = asyncio.run(main())
    assert got == b"".join(b"%05d" % i for i in range(2000))
    assert elapsed >= least


def _connects(net: netns.Network, src: str, dst: str, timeout: float = 1.0) -> bool:
    code = (f"import socket; c=socket.create_connection(('{net.hosts[dst].ip}',7000),"
            f"timeout={timeout}); c.sendall(b'hi'); assert c.recv(10)==b'hi'")
    r = subprocess.run(net.hosts[src].wrap([sys.executable, "-c", code]), capture_output=True)
    return r.returncode == 0


@needs_netns
def test_faults_cut_traffic_and_healing_restores_it(tmp_path):
    with netns.Network() as net:
        for name in ("h1", "h2", "px"):
            net.add_host(name)
        server = spawn("server", net.hosts["h1"].wrap(
            [sys.executable, "-c", SERVER, net.hosts["h1"].ip]), tmp_path / "s.log", "up")
        try:
            assert _connects(net, "h2", "h1")
            net.link("h1", up=False)
            assert not _connects(net, "h2", "h1")
            net.heal("h1")
            assert _connects(net, "h2", "h1")
            net.block("h1", "in")  # h1 hears nothing from its peers
            assert not _connects(net, "h2", "h1")
            net.heal("h1")
            net.block("h2", "out", peers=[net.hosts["h1"].ip])
            assert not _connects(net, "h2", "h1")
            net.heal("h2")
            net.loss("h1", 1.0)
            assert not _connects(net, "h2", "h1")
            net.heal("h1")
            assert _connects(net, "h2", "h1")
            # h2 -> h1:7000 through a delay proxy on px
            px = net.hosts["px"]
            proxy = spawn("proxy", px.wrap(python_module(
                "tests.hosts.proxy", f"--listen={px.ip}:0", f"--to={net.hosts['h1'].ip}:7000",
                "--delay=0.3")), tmp_path / "p.log", "proxy: listening",
                env=dict(os.environ, PYTHONPATH=REPO))
            try:
                net.redirect("h2", net.hosts["h1"].ip, 7000, px.ip, int(proxy.field("port")))
                t0 = time.monotonic()
                assert _connects(net, "h2", "h1", timeout=5)
                assert time.monotonic() - t0 >= 0.3
            finally:
                proxy.stop(timeout=5)
        finally:
            kill_group(server.pid)
            server.stop(timeout=5)
    assert not any(ns.startswith(f"crh-{net.run_id}-")
                   for ns in netns.sh("ip", "netns", "list").split("\n"))
    assert f"crh{net.run_id}" not in netns.sh("ip", "-o", "link", "show")
    assert f"crh-{net.run_id}" not in netns.sh("iptables", "-S", "FORWARD")


@needs_netns
def test_a_crashed_runs_leftovers_are_swept(tmp_path):
    net = netns.Network().open()
    net.add_host("h1")
    net.mount_tmpfs(tmp_path / "work", 1)
    (netns.RUN_DIR / net.run_id / "pid").write_text("999999999")  # its owner is gone
    assert net.run_id in netns.sweep_stale()
    assert net.run_id not in netns.sh("ip", "netns", "list")
    assert f"crh{net.run_id}" not in netns.sh("ip", "-o", "link", "show")
    assert str(tmp_path / "work") not in Path("/proc/mounts").read_text()


@needs_netns
def test_a_work_dir_tmpfs_fills_up_and_a_skewed_clock_is_off(tmp_path):
    with netns.Network() as net:
        net.add_host("h1")
        work = tmp_path / "work"
        net.mount_tmpfs(work, 2)
        with pytest.raises(OSError):
            (work / "filler").write_bytes(b"\0" * (3 << 20))
        assert os.statvfs(work).f_bavail == 0
    assert str(work) not in Path("/proc/mounts").read_text()
    out = subprocess.run([sys.executable, "-c", "import time; time.sleep(0.01); "
                          "print(time.time())"],
                         env=faketime_env(3600), capture_output=True, text=True, check=True)
    assert float(out.stdout) - time.time() > 3000  # and its sleeps still work
