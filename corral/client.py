"""The one HTTP client every command uses: JSON in and out, errors as one readable line.

`ApiError` carries the API's status, message and details (Marathon's `{"message",
"details"}`, the master's `{"error"}` or plain text); `Unreachable` names the address that
did not answer. The CLI turns both into a one-line message and exit code 1.
"""
from __future__ import annotations

import json
from typing import Any

from corral.errors import CliError

TIMEOUT = 10.0


class Unreachable(CliError):
    pass


class ApiError(CliError):
    def __init__(self, status: int, message: str, method: str, url: str) -> None:
        super().__init__(f"{method} {url}: {status} {message}")
        self.status = status


def describe(body: Any, fallback: str) -> str:
    """The API's message and details, flattened to one line."""
    if isinstance(body, dict):
        msg = str(body.get("message") or body.get("error") or fallback)
        details = body.get("details")
        if isinstance(details, list):
            parts = []
            for d in details:
                if isinstance(d, dict):
                    errs = d.get("errors") or []
                    errs = ", ".join(map(str, errs)) if isinstance(errs, list) else str(errs)
                    parts.append(f"{d.get('path', '')}: {errs}".strip(": "))
                else:
                    parts.append(str(d))
            details = "; ".join(parts)
        if details:
            msg += f" ({details})"
        return " ".join(msg.split())
    text = " ".join(str(body).split()) if body else ""
    return text[:300] or fallback


class Client:
    """One base URL (`http://host:port`) and a pooled session."""

    def __init__(self, base: str, what: str, timeout: float = TIMEOUT,
                 auth: tuple[str, str] | None = None, ca_cert: str | None = None) -> None:
        self.base = base.rstrip("/")
        self.what = what  # "master" or "Marathon", for messages
        self.timeout = timeout
        self.auth = auth
        self.ca_cert = ca_cert
        self._session: Any = None

    @property
    def session(self) -> Any:
        if self._session is None:
            import requests
            self._session = requests.Session()
            self._session.headers.update({"Accept": "application/json"})
            self._session.auth = self.auth
        return self._session

    def url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else self.base + path

    def request(self, method: str, path: str, *, json_body: Any = None,
                params: dict[str, Any] | None = None, data: Any = None,
                stream: bool = False, timeout: float | None = None,
                headers: dict[str, str] | None = None) -> Any:
        import requests
        url = self.url(path)
        try:
            r = self.session.request(method, url, json=json_body, params=params, data=data,
                                     headers=headers, stream=stream,
                                     timeout=timeout or self.timeout,
                                     verify=self.ca_cert or True)
        except requests.exceptions.SSLError as e:
            raise Unreachable(f"TLS with the {self.what} at {self.base} failed: "
                              f"{_reason(e)} (--ca-cert names the CA)") from None
        except requests.ConnectionError as e:
            raise Unreachable(f"cannot reach the {self.what} at {self.base}: "
                              f"{_reason(e)}") from None
        except requests.Timeout:
            raise Unreachable(f"the {self.what} at {self.base} did not answer in "
                              f"{timeout or self.timeout:g}s") from None
        if r.status_code >= 400:
            try:
                body = r.json()
            except ValueError:
                body = r.text
            raise ApiError(r.status_code, describe(body, r.reason or "error"), method, r.url)
        if stream:
            return r
        if not r.content:
            return None
        try:
            return r.json()
        except ValueError:
            return r.text

    def get(self, path: str, **kw: Any) -> Any:
        return self.request("GET", path, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> Any:
        return self.request("POST", path, json_body=body, **kw)

    def put(self, path: str, body: Any = None, **kw: Any) -> Any:
        return self.request("PUT", path, json_body=body, **kw)

    def delete(self, path: str, **kw: Any) -> Any:
        return self.request("DELETE", path, **kw)


def _reason(e: Exception) -> str:
    text = str(e)
    if "CERTIFICATE_VERIFY_FAILED" in text:
        return "certificate verify failed"
    for marker in ("Connection refused", "Name or service not known", "timed out",
                   "No route to host", "Temporary failure in name resolution"):
        if marker in text:
            return marker.lower()
    return text.splitlines()[0][:200] if text else type(e).__name__


def dumps(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=False)
