"""The API's refusals: an HTTP status and Marathon's JSON error body.

Raised by the commands when a request cannot be carried out (a missing app, a locked app,
a bad rollback version); the HTTP layer turns one into its response, and a refused
command has changed nothing.
"""
from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An answer other than success: HTTP status and JSON body."""

    def __init__(self, status: int, body: dict[str, Any] | None = None):
        super().__init__(f"{status}: {body}")
        self.status = status
        self.body = body


def app_missing(app_id: str) -> ApiError:
    return ApiError(404, {"message": f"App '{app_id}' does not exist"})


def group_missing(gid: str) -> ApiError:
    return ApiError(404, {"message": f"Group '{gid}' does not exist"})
