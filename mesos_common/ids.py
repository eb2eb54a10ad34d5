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


# The version (4) and RFC 4122 variant bits of a uuid4, as `uuid.UUID(version=4)` sets them.
_UUID4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_UUID4_SET = (0x4000 << 64) | (0x8000 << 48)


def random_prefix(rng: random.Random | None = None) -> str:
    """A fresh process prefix (uuid4 text), seeded when an rng is given."""
    if rng is None:
        return str(uuid.uuid4())
    return uuid4_text(rng.getrandbits(128))


def uuid4_text(bits: int) -> str:
    """`str(uuid.UUID(int=bits, version=4))`, without building a UUID: the agent makes one
    per task run (its run id), and the UUID's checks and properties were most of the cost."""
    h = "%032x" % ((bits & _UUID4_CLEAR) | _UUID4_SET)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def new_uuid_bytes(rng: random.Random) -> bytes:
    """16 random bytes from an injected rng: status-update uuids in cores."""
    return rng.getrandbits(128).to_bytes(16, "big")
