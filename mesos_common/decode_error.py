"""The value a rejected frame decodes to. Apart from the codec so that the cores, which only test
for it, import no codec (and none of the codec's packer machinery)."""
from __future__ import annotations

import attrs


@attrs.frozen
class DecodeError:
    """Why a frame was rejected; `type` is the claimed message type when it could be read."""

    message: str
    type: str = ""
