"""Id generation. Cores take an `IdGen` so simulations can draw ids deterministically."""
from __future__ import annotations

import itertools
import random
import uuid


class IdGen:
    """Ids of the form `<prefix>-<kind><n>`, unique per prefix; the prefix names the process."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self._counter = itertools.count(1)

    def next(self, kind: str) -> str:
        return f"{self.prefix}-{kind}{next(self._counter)}"


def random_prefix(rng: random.Random | None = None) -> str:
    """A fresh process prefix (uuid4 text), seeded when an rng is given."""
    if rng is None:
        return str(uuid.uuid4())
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def new_uuid_bytes(rng: random.Random) -> bytes:
    """16 random bytes from an injected rng: status-update uuids in cores."""
    return rng.getrandbits(128).to_bytes(16, "big")
