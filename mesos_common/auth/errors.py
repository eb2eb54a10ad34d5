"""The error of the security configuration, apart from the modules that read the files, so
the pure parts (ACLs, credentials, rate limits) the master core uses import no file IO."""
from __future__ import annotations


class AuthConfigError(ValueError):
    """A credentials, ACL or rate-limit document that cannot be used; the message says why."""
