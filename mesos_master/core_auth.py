"""Who a peer is and what it may do: authentication, ACLs, rate limits, per-principal caps.

A peer with a credential sends `Authenticate` just before each registration (the transport
does it); the master remembers the principal of that connection and, with
`authenticate_agents` / `authenticate_frameworks`, admits only authenticated connections.
A refusal is a ProtocolError (or Mesos's Error for a framework refused by an ACL) and is
logged once per connection; nothing else changes, so a refused peer gets no offers and runs
nothing. Pure, like the rest of the core.
"""
from __future__ import annotations

from attrs import frozen

from mesos_common import messages as m
from mesos_master.core_base import EventTable, MasterBase, MessageTable
from mesos_master.state import Framework

MAX_PEERS_REMEMBERED = 100_000  # authenticated / refused connections kept (oldest go first)


@frozen
class PeerAuthenticated:
    """A connection whose principal an edge proved itself (the v1 scheduler API's HTTP
    Basic credentials), as a successful Authenticate would."""

    peer: bytes
    principal: str


class AuthHandlers(MasterBase):

    def _on_peer_authenticated(self, event: PeerAuthenticated) -> None:
        self._remember(event.peer, event.principal)
        self.counters["authentication_successes"] += 1

    def _remember(self, peer: bytes, principal: str | None) -> None:
        self.authenticated.pop(peer, None)
        if len(self.authenticated) >= MAX_PEERS_REMEMBERED:
            self.authenticated.pop(next(iter(self.authenticated)))
        self.authenticated[peer] = principal  # None: its latest Authenticate failed

    def _on_authenticate(self, msg: m.Authenticate, peer: bytes) -> None:
        creds = self.config.auth.credentials
        ok = creds is not None and creds.check(msg.principal, msg.secret)
        self._remember(peer, msg.principal if ok else None)
        if not ok:
            self.counters["authentication_failures"] += 1
            return self._refuse(peer, msg, f"authentication failed for principal "
                                           f"{msg.principal!r}")
        self.counters["authentication_successes"] += 1

    def _auth_failed(self, peer: bytes) -> bool:
        """Did this connection's latest Authenticate fail? (Then it registers nothing,
        whether or not authentication is required.)"""
        return peer in self.authenticated and self.authenticated[peer] is None

    def _refuse(self, peer: bytes, msg: object, why: str) -> None:
        """A ProtocolError for the peer; a warning in the log the first time only."""
        self.counters["dropped_messages"] += 1
        self._send(peer, m.ProtocolError(why, in_reply_to=type(msg).__name__))
        if peer not in self._refusals_logged:
            if len(self._refusals_logged) >= MAX_PEERS_REMEMBERED:
                self._refusals_logged.clear()
            self._refusals_logged.add(peer)
            self._log("warning", f"refused {type(msg).__name__} from {peer!r}: {why}")

    def _agent_principal_ok(self, peer: bytes, msg: object) -> bool:
        """May this connection register an agent? (Refused: answered, False.)"""
        auth = self.config.auth
        principal = self.authenticated.get(peer)
        if self._auth_failed(peer):
            self._refuse(peer, msg, "agent authentication failed: check --credential")
            return False
        if auth.authenticate_agents and principal is None:
            self._refuse(peer, msg, "agent authentication required: start the agent with "
                                    "--credential")
            return False
        cap = auth.max_agents_per_principal
        if cap is not None and principal is not None:
            mine = sum(1 for a in self.agents.values()
                       if a.principal == principal and a.peer != peer)
            if mine >= cap:
                self._refuse(peer, msg, f"principal {principal!r} has {mine} agents, "
                                        f"the most allowed")
                return False
        return True

    def _framework_principal(self, peer: bytes, msg: m.Subscribe) -> tuple[bool, str | None]:
        """The principal a subscribing framework acts as; (False, _) after refusing it."""
        auth = self.config.auth
        info = msg.framework_info
        principal = self.authenticated.get(peer)
        why = None
        if self._auth_failed(peer):
            why = "framework authentication failed: check its principal and secret"
        elif auth.authenticate_frameworks and principal is None:
            why = "framework authentication required: give a principal and secret"
        elif principal is not None and info.principal not in (None, principal):
            why = f"framework principal {info.principal!r} is not the authenticated one"
        if why is not None:  # fatal for the framework, as in Mesos (its driver aborts)
            self._refuse(peer, msg, why)
            self._send(peer, m.Error(why))
            return False, None
        principal = principal if principal is not None else info.principal
        for role in info.roles or ("*",):
            if not auth.acls.allowed(principal, "register_frameworks", role):
                why = f"principal {principal!r} may not register frameworks in role {role!r}"
                self._log("warning", f"refused subscription from {peer!r}: {why}")
                self._send(peer, m.Error(f"not authorized: {why}"))
                return False, None
        cap = auth.max_frameworks_per_principal
        if cap is not None and principal is not None:
            mine = sum(1 for f in self.frameworks.values()
                       if f.info.principal == principal and f.id != info.id and f.connected)
            if mine >= cap:
                self._refuse(peer, msg, f"principal {principal!r} has {mine} frameworks, "
                                        f"the most allowed")
                return False, None
        return True, principal

    def _rate_limited(self, peer: bytes, msg: object) -> bool:
        """Over its principal's rate: refused (True)."""
        limiter = self.rate_limiter
        if limiter is None:
            return False
        ref = self.peers.get(peer)
        fw = self.frameworks.get(ref[1]) if ref is not None and ref[0] == "framework" else None
        principal = fw.info.principal if fw is not None else self.authenticated.get(peer)
        if limiter.allow(principal, self.now):
            return False
        self.counters["rate_limited_messages"] += 1
        self._refuse(peer, msg, f"rate limit of principal {principal!r} exceeded")
        return True

    def _run_as_error(self, fw: Framework, task: m.TaskInfo) -> str | None:
        """The `run_tasks` ACL on the task's user (its command's, else its framework's)."""
        user = (task.command.user if task.command else None) or fw.info.user or None
        if self.config.auth.acls.allowed(fw.info.principal, "run_tasks", user):
            return None
        return f"not authorized: principal {fw.info.principal!r} may not run tasks as user " \
               f"{user!r}"

    def authorized(self, principal: str | None, action: str, obj: str | None) -> bool:
        """The ACLs' answer, for the HTTP layer (weights, quota, teardown, endpoints)."""
        return self.config.auth.acls.allowed(principal, action, obj)


#: The event and the message handled here (mesos_master/core.py composes the master's tables).
EVENTS: EventTable[AuthHandlers] = {
    PeerAuthenticated: AuthHandlers._on_peer_authenticated,
}
MESSAGES: MessageTable[AuthHandlers] = {
    m.Authenticate: AuthHandlers._on_authenticate,
}
