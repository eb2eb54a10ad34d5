"""Id generation: the fast uuid4 text is exactly what `uuid.UUID(version=4)` prints."""
from __future__ import annotations

import random
import uuid

from hypothesis import given
from hypothesis import strategies as st

from mesos_common.ids import random_prefix, uuid4_text


@given(st.integers(0, (1 << 128) - 1))
def test_uuid4_text_is_the_canonical_uuid4(bits: int) -> None:
    text = uuid4_text(bits)
    assert text == str(uuid.UUID(int=bits, version=4))
    assert uuid.UUID(text).version == 4 and uuid.UUID(text).variant == uuid.RFC_4122


def test_seeded_prefixes_repeat_and_unseeded_ones_are_uuid4() -> None:
    assert random_prefix(random.Random(7)) == random_prefix(random.Random(7))
    assert random_prefix(random.Random(7)) == str(
        uuid.UUID(int=random.Random(7).getrandbits(128), version=4))
    assert uuid.UUID(random_prefix()).version == 4
