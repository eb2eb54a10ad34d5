"""The security flags master and agent share, and what /flags may show of them."""
from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from mesos_common.auth.credentials import Credential, Credentials
from mesos_common.auth.http import HttpAuth
from mesos_common.auth.jsonflag import AuthConfigError, read_flag_text
from mesos_common.auth.load import load_credential, load_credentials
from mesos_common.curve import CurveError, PeerSecurity
from mesos_common.flags import FlagParser, boolean

# Flags whose value may be a secret (inline JSON, or the secret itself): shown as a mark.
SECRET_FLAGS = frozenset({"credentials", "credential", "secret", "http_credentials",
                          "mesos_authentication_secret"})
HIDDEN = "(hidden)"


def redacted(flags: Mapping[str, str]) -> dict[str, str]:
    """A path stays (as Mesos shows it); an inline document or a secret does not."""
    out = {}
    for name, value in flags.items():
        inline = value.lstrip().startswith(("{", "[")) or name == "secret"
        out[name] = HIDDEN if name in SECRET_FLAGS and inline else value
    return out


def add_http_security_flags(p: FlagParser) -> None:
    p.add_flag("authenticate_http_readonly", type=boolean, default=False,
               help="require HTTP Basic authentication (--credentials) on read-only "
                    "endpoints: state, metrics, files")
    p.add_flag("authenticate_http_readwrite", type=boolean, default=False,
               help="require HTTP Basic authentication (--credentials) on endpoints that "
                    "change something")
    p.add_flag("ssl_cert", default=None, help="serve HTTPS with this certificate (PEM)")
    p.add_flag("ssl_key", default=None, help="the private key of --ssl_cert (PEM)")


def http_auth_from(ns: argparse.Namespace, parser: FlagParser,
                   credentials: Credentials | None) -> HttpAuth:
    auth = HttpAuth(credentials=credentials, readonly=ns.authenticate_http_readonly,
                    readwrite=ns.authenticate_http_readwrite, ssl_cert=ns.ssl_cert,
                    ssl_key=ns.ssl_key)
    try:
        auth.check()
    except ValueError as e:
        parser.error(str(e))
    return auth


def add_peer_security_flags(p: FlagParser, principal_flags: bool = False) -> None:
    """An agent's (`--credential FILE`) or a framework's (`--principal/--secret`) way to
    prove who it is, and the master's CURVE key to encrypt to."""
    p.add_flag("master_public_key", default=None,
               help="the master's CURVE public certificate (*.key): encrypt to it and to no "
                    "other key (default: trust the key the master publishes, and log it)")
    if principal_flags:
        p.add_flag("principal", default=None, help="principal to authenticate as")
        p.add_flag("secret", default=None,
                   help="the principal's secret (or a file holding it, file:///path)")
    else:
        p.add_flag("credential", default=None,
                   help='a file (or file:///path) holding {"principal": .., "secret": ..}')


def peer_security_from(ns: argparse.Namespace, parser: FlagParser) -> PeerSecurity:
    cred = None
    try:
        if getattr(ns, "credential", None):
            cred = load_credential(ns.credential)
        elif getattr(ns, "principal", None) or getattr(ns, "secret", None):
            if not (ns.principal and ns.secret):
                parser.error("--principal and --secret go together")
            cred = Credential(ns.principal, read_secret(ns.secret))
        return PeerSecurity.from_flags(ns.master_public_key, cred)
    except (AuthConfigError, CurveError) as e:
        parser.error(str(e))
        raise  # not reached: error() exits


def read_secret(value: str) -> str:
    """`--secret`: the secret itself, or `file:///path` holding it (first line)."""
    if not value.startswith("file://"):
        return value
    lines = read_flag_text(value).splitlines()
    if not lines or not lines[0].strip():
        raise AuthConfigError(f"{value[len('file://'):]}: no secret in it")
    return lines[0].strip()


def add_agent_security_flags(p: FlagParser) -> None:
    add_peer_security_flags(p)
    p.add_flag("http_credentials", default=None,
               help="principals and secrets for HTTP authentication (the master's "
                    "--credentials format)")
    add_http_security_flags(p)


def agent_security_from(ns: argparse.Namespace, parser: FlagParser
                        ) -> tuple[PeerSecurity, HttpAuth]:
    security = peer_security_from(ns, parser)
    try:
        creds = load_credentials(ns.http_credentials) if ns.http_credentials else None
    except AuthConfigError as e:
        parser.error(str(e))
    return security, http_auth_from(ns, parser, creds)


def add_marathon_mesos_auth_flags(p: FlagParser) -> None:
    """Marathon's flags for authenticating to the master as a framework."""
    p.add_flag("mesos_authentication_principal", default=None,
               help="principal Marathon authenticates to the master as")
    p.add_flag("mesos_authentication_secret_file", default=None,
               help="file holding that principal's secret")
    p.add_flag("master_public_key", default=None,
               help="the master's CURVE public certificate (*.key) to encrypt to")


def marathon_driver_security(ns: argparse.Namespace, parser: FlagParser) -> dict[str, Any]:
    """Keyword arguments for Marathon's AsyncSchedulerDriver."""
    principal, secret_file = ns.mesos_authentication_principal, ns.mesos_authentication_secret_file
    if bool(principal) != bool(secret_file):
        parser.error("--mesos_authentication_principal and --mesos_authentication_secret_file "
                     "go together")
    secret = None
    if secret_file:
        try:
            secret = read_secret(f"file://{secret_file.removeprefix('file://')}")
        except AuthConfigError as e:
            parser.error(f"--mesos_authentication_secret_file: {e}")
    try:
        if ns.master_public_key:
            PeerSecurity.from_flags(ns.master_public_key, None)  # a bad file fails here
    except CurveError as e:
        parser.error(str(e))
    return {"principal": principal or None, "secret": secret,
            "master_public_key": ns.master_public_key}


MARATHON_REALM = 'Basic realm="Mesosphere"'  # Marathon's --http_realm default
MARATHON_PUBLIC = frozenset({"/ping"})  # liveness probes need no credentials


def add_marathon_http_flags(p: FlagParser) -> None:
    p.add_flag("http_credentials", default=None,
               help="user:password[,user:password]: HTTP Basic authentication on the whole "
                    "API (Marathon's format); file:///path reads it from a file")
    p.add_flag("ssl_cert", default=None, help="serve HTTPS with this certificate (PEM)")
    p.add_flag("ssl_key", default=None, help="the private key of --ssl_cert (PEM)")
    p.add_flag("ssl_ca", default=None,
               help="CA certificates (PEM) a standby checks the leader's HTTPS against when "
                    "it proxies (default: LIBPROCESS_SSL_CA_FILE, else the system's)")


def parse_http_credentials(text: str) -> Credentials:
    """Marathon's `user:password[,user:password]`."""
    creds = []
    for i, item in enumerate(text.split(",")):
        user, sep, password = item.strip().partition(":")
        if not sep or not user or not password:
            raise AuthConfigError(f"--http_credentials: item {i + 1} is not user:password")
        creds.append(Credential(user, password))
    return Credentials(creds)


def marathon_http_auth(ns: argparse.Namespace, parser: FlagParser) -> HttpAuth:
    try:
        creds = parse_http_credentials(read_secret(ns.http_credentials)) \
            if ns.http_credentials else None
    except AuthConfigError as e:
        parser.error(str(e))
    auth = HttpAuth(credentials=creds, readonly=creds is not None,
                    readwrite=creds is not None, ssl_cert=ns.ssl_cert, ssl_key=ns.ssl_key,
                    ssl_ca=ns.ssl_ca)
    try:
        auth.check()
    except ValueError as e:
        parser.error(str(e))
    return auth
