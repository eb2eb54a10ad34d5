"""What the security tests share: credentials files, a TCP proxy that records the bytes it
forwards, a stand-in /master/info that points peers at that proxy, a throwaway TLS cert."""
from __future__ import annotations

import json
import socket
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.integration.test_ha_failover import Proxy

AGENT_SECRET = "agent-Secret-7f3a91"
FW_SECRET = "fw-Secret-c0ffee42"
OPS_SECRET = "ops-Secret-9d8e7f"
DEV_SECRET = "dev-Secret-5a5a5a"
SECRETS = (AGENT_SECRET, FW_SECRET, OPS_SECRET, DEV_SECRET)


def write_credentials(root: Path) -> dict[str, Path]:
    """The master's --credentials, an agent's --credential and a wrong one."""
    root.mkdir(parents=True, exist_ok=True)
    master = root / "credentials.json"
    master.write_text(json.dumps({"credentials": [
        {"principal": "agent", "secret": AGENT_SECRET},
        {"principal": "fw", "secret": FW_SECRET},
        {"principal": "ops", "secret": OPS_SECRET},
        {"principal": "dev", "secret": DEV_SECRET}]}))
    agent = root / "agent-credential.json"
    agent.write_text(json.dumps({"principal": "agent", "secret": AGENT_SECRET}))
    wrong = root / "wrong-credential.json"
    wrong.write_text(json.dumps({"principal": "agent", "secret": "not-the-secret"}))
    for p in (master, agent, wrong):
        p.chmod(0o600)
    return {"master": master, "agent": agent, "wrong": wrong}


class RecordingProxy(Proxy):
    """The HA tests' TCP relay, keeping every byte it forwards in both directions."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.captured = bytearray()
        self._lock = threading.Lock()
        super().__init__(target)

    def _pump(self, a: socket.socket, b: socket.socket) -> None:  # type: ignore[override]
        Proxy._pump(_Recorded(a, self), b)  # type: ignore[arg-type]

    def record(self, data: bytes) -> None:
        with self._lock:
            self.captured += data

    def close(self) -> None:
        self.cut()


class _Recorded:
    """A socket whose reads are also recorded."""

    def __init__(self, sock: socket.socket, proxy: RecordingProxy) -> None:
        self.sock, self.proxy = sock, proxy

    def recv(self, n: int) -> bytes:
        data = self.sock.recv(n)
        self.proxy.record(data)
        return data

    def shutdown(self, how: int) -> None:
        self.sock.shutdown(how)


class InfoServer:
    """Serves /master/info: the real master's, with the ZeroMQ endpoint swapped."""

    def __init__(self, info: dict[str, Any]) -> None:
        body = json.dumps(info).encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's spelling)
                self.send_response(200 if self.path == "/master/info" else 404)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def self_signed(root: Path) -> tuple[Path, Path]:
    """A throwaway certificate for 127.0.0.1 (openssl)."""
    cert, key = root / "tls.crt", root / "tls.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    return cert, key


def grep_secrets(texts: dict[str, str]) -> list[str]:
    """Where any test secret shows up."""
    return [f"{name}: {s}" for name, text in texts.items() for s in SECRETS if s in text]
