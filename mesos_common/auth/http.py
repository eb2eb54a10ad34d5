"""HTTP authentication for the daemons' aiohttp apps: Basic against the credentials file,
Mesos's split of readonly and readwrite endpoints, optional TLS.

`--authenticate_http_readonly` protects what only reads (state, metrics, files),
`--authenticate_http_readwrite` what changes something (quota, weights, teardown,
maintenance, operator calls). A request without valid credentials gets 401 with
`WWW-Authenticate: Basic realm="mesos"`; an authenticated principal the ACLs refuse, 403.
The principal (or None) is left in `request[PRINCIPAL]` for the handlers.
"""
from __future__ import annotations

import base64
import binascii
import os
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from attrs import field, frozen

from mesos_common.auth.credentials import Credentials

REALM = 'Basic realm="mesos"'
READONLY, READWRITE = "readonly", "readwrite"
# Never behind authentication: liveness and how peers find the leader.
PUBLIC_PATHS = frozenset({"/health", "/master/health", "/version", "/master/info",
                          "/master/redirect", "/redirect"})
# Endpoints Mesos authorizes with the `get_endpoints` ACL (others have ACLs of their own).
GET_ENDPOINTS_PATHS = frozenset({"/metrics/snapshot", "/flags", "/master/flags",
                                 "/monitor/statistics", "/monitor/statistics.json",
                                 "/files/debug", "/containers", "/logging/toggle"})
# Where the middleware leaves the request's principal (a typed key where aiohttp has them).
PRINCIPAL: Any = web.RequestKey("principal", str) if hasattr(web, "RequestKey") else "principal"
Authorize = Callable[[str | None, str, str | None], bool]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@frozen
class HttpAuth:
    credentials: Credentials | None = field(default=None, eq=False)
    readonly: bool = False
    readwrite: bool = False
    ssl_cert: str | None = None
    ssl_key: str | None = None
    ssl_ca: str | None = None  # peers' certificates are checked against it (else the system's)

    @property
    def tls(self) -> bool:
        return self.ssl_cert is not None

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    def ssl_context(self) -> ssl.SSLContext | None:
        if self.ssl_cert is None:
            return None
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(self.ssl_cert, self.ssl_key)
        return ctx

    def client_context(self) -> ssl.SSLContext:
        """For requests to peers serving TLS: --ssl_ca, else LIBPROCESS_SSL_CA_FILE (as the
        master detection), else the system's CAs."""
        return ssl.create_default_context(
            cafile=self.ssl_ca or os.environ.get("LIBPROCESS_SSL_CA_FILE") or None)

    def check(self) -> None:
        """Misconfiguration as a one-line error (for the flag parser)."""
        if (self.readonly or self.readwrite) and self.credentials is None:
            raise ValueError("HTTP authentication needs --credentials")
        if (self.ssl_cert is None) != (self.ssl_key is None):
            raise ValueError("--ssl_cert and --ssl_key go together")
        if self.ssl_cert is not None:
            try:
                self.ssl_context()
            except (OSError, ssl.SSLError) as e:
                raise ValueError(f"cannot load --ssl_cert/--ssl_key: {e}") from None
        if self.ssl_ca is not None:
            try:
                self.client_context()
            except (OSError, ssl.SSLError) as e:
                raise ValueError(f"cannot load --ssl_ca: {e}") from None


def kind_of(request: web.Request) -> str:
    """Which flag protects this request."""
    return READONLY if request.method in ("GET", "HEAD", "OPTIONS") else READWRITE


def basic_principal(header: str | None, creds: Credentials) -> str | None:
    """The principal whose Basic credentials `header` carries, or None."""
    if not header or not header.startswith("Basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
    except (binascii.Error, ValueError):  # not base64, not ASCII, not UTF-8
        return None
    principal, sep, secret = decoded.partition(":")
    if not sep or not creds.check(principal, secret):
        return None
    return principal


def unauthorized(realm: str = REALM) -> web.Response:
    return web.json_response({"message": "authentication required"}, status=401,
                             headers={"WWW-Authenticate": realm})


def forbidden(principal: str | None, what: str) -> web.Response:
    return web.json_response({"message": f"principal {principal!r} is not authorized to "
                                         f"{what}"}, status=403)


def middleware(auth: HttpAuth, authorize: Callable[[], Authorize | None] | None = None,
               realm: str = REALM, public: frozenset[str] = PUBLIC_PATHS
               ) -> Callable[..., Awaitable[web.StreamResponse]]:
    """Authenticate by the path's kind (`public` paths: never); `authorize()` (when it gives
    one) is asked about `get_endpoints` for the path (403 when it says no)."""

    @web.middleware
    async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
        kind = None if request.path in public else kind_of(request)
        principal = None
        if auth.credentials is not None and kind is not None:
            principal = basic_principal(request.headers.get("Authorization"), auth.credentials)
            required = auth.readonly if kind == READONLY else auth.readwrite
            if required and principal is None:
                return unauthorized(realm)
        request[PRINCIPAL] = principal
        check = authorize() if authorize is not None and request.path in GET_ENDPOINTS_PATHS \
            else None
        if check is not None and not check(principal, "get_endpoints", request.path):
            return forbidden(principal, f"GET {request.path}")
        return await handler(request)

    return authenticate
