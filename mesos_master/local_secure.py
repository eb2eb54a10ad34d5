"""`mesos-local --secure`: throwaway keys, certificates and credentials for a local cluster
with CURVE, authentication and TLS on, under `<work_dir>/secure/`.

Made once per work dir (a restart reuses them): `credentials.json` (Mesos format; principals
`agent`, `marathon`, `operator`), `agent-credential.json`, `marathon.secret`,
`operator.secret`, the master's CURVE pair (`master.key` public, `master.key_secret`), and a
CA (`ca.pem`) that signed `tls.crt` / `tls.key` for the cluster's address. Certificates come
from the `openssl` command; secrets from `secrets.token_urlsafe`.
"""
from __future__ import annotations

import json
import os
import secrets
import subprocess
from pathlib import Path

import zmq.auth
from attrs import frozen

PRINCIPALS = ("agent", "marathon", "operator")


@frozen
class SecureFiles:
    root: Path
    credentials: Path
    agent_credential: Path
    marathon_secret: Path
    operator_secret: Path
    master_public: Path
    master_secret: Path
    ca: Path
    cert: Path
    key: Path

    @classmethod
    def at(cls, root: Path) -> SecureFiles:
        return cls(root, *(root / name for name in (
            "credentials.json", "agent-credential.json", "marathon.secret", "operator.secret",
            "master.key", "master.key_secret", "ca.pem", "tls.crt", "tls.key")))


def _private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def _openssl(*args: str) -> None:
    try:
        subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=120)
    except FileNotFoundError:
        raise RuntimeError("--secure needs the openssl command") from None
    except subprocess.CalledProcessError as e:
        raise RuntimeError(f"openssl {args[0]} failed: {e.stderr.decode(errors='replace')}") \
            from None


def _tls(files: SecureFiles, ip: str) -> None:
    root = files.root
    ca_key = root / "ca.key"
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
             "-subj", "/CN=corral local CA", "-keyout", str(ca_key), "-out", str(files.ca))
    csr = root / "tls.csr"
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={ip}",
             "-keyout", str(files.key), "-out", str(csr))
    ext = root / "tls.ext"
    names = f"IP:{ip},DNS:localhost" + (",IP:127.0.0.1" if ip != "127.0.0.1" else "")
    ext.write_text(f"subjectAltName={names}\n")
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(files.ca), "-CAkey", str(ca_key),
             "-CAcreateserial", "-days", "30", "-extfile", str(ext), "-out", str(files.cert))
    for p in (csr, ext, root / "ca.srl"):
        p.unlink(missing_ok=True)
    for p in (ca_key, files.key):
        p.chmod(0o600)


def ensure(work_dir: Path, ip: str) -> SecureFiles:
    files = SecureFiles.at(work_dir / "secure")
    if files.credentials.exists() and files.cert.exists() and files.master_secret.exists():
        return files
    files.root.mkdir(mode=0o700, parents=True, exist_ok=True)
    made = {p: secrets.token_urlsafe(24) for p in PRINCIPALS}
    _private(files.credentials, json.dumps({"credentials": [
        {"principal": p, "secret": s} for p, s in made.items()]}, indent=2))
    _private(files.agent_credential, json.dumps({"principal": "agent", "secret": made["agent"]}))
    _private(files.marathon_secret, made["marathon"] + "\n")
    _private(files.operator_secret, made["operator"] + "\n")
    zmq.auth.create_certificates(str(files.root), "master")
    files.master_secret.chmod(0o600)
    _tls(files, ip)
    return files


def master_flags(files: SecureFiles) -> list[str]:
    return ["--zmq_curve", f"--zmq_curve_cert={files.master_secret}",
            f"--credentials={files.credentials}", "--authenticate_agents",
            "--authenticate_frameworks", "--authenticate_http_readonly",
            "--authenticate_http_readwrite", f"--ssl_cert={files.cert}",
            f"--ssl_key={files.key}"]


def agent_flags(files: SecureFiles) -> list[str]:
    return [f"--credential={files.agent_credential}",
            f"--master_public_key={files.master_public}",
            f"--http_credentials={files.credentials}", "--authenticate_http_readonly",
            "--authenticate_http_readwrite", f"--ssl_cert={files.cert}",
            f"--ssl_key={files.key}"]


def marathon_flags(files: SecureFiles) -> list[str]:
    return ["--mesos_authentication_principal=marathon",
            f"--mesos_authentication_secret_file={files.marathon_secret}",
            f"--master_public_key={files.master_public}"]
