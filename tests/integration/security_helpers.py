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


class RecordingProxy:
    """Forwards one listening port to `target`, keeping every byte in both directions."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.captured = bytearray()
        self._lock = threading.Lock()
        self._socks: list[socket.socket] = [self.listener]
        self._threads: list[threading.Thread] = []
        self._start(self._accept)

    def _start(self, fn: Any, *args: Any) -> None:
        t = threading.Thread(target=fn, args=args, daemon=True)
        self._threads.append(t)
        t.start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self._socks += [client, upstream]
            self._start(self._pump, client, upstream)
            self._start(self._pump, upstream, client)

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        while True:
            try:
                data = src.recv(65536)
                if not data:
                    break
                with self._lock:
                    self.captured += data
                dst.sendall(data)
            except OSError:
                break
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self) -> None:
        for s in self._socks:
            try:
                s.close()
            except OSError:
                pass


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
