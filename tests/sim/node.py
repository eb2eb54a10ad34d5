"""The simulated process every node kind extends: a name, up or down, and an incarnation."""
from __future__ import annotations

from attrs import define


@define(eq=False)
class Node:
    name: str
    up: bool = True
    incarnation: int = 0

    @property
    def identity(self) -> bytes:
        """Its ZeroMQ identity: a restarted process has a new connection."""
        return f"{self.name}#{self.incarnation}".encode()
