import pytest
from hypothesis import given
from hypothesis import strategies as st

from mesos_common.auth.jsonflag import AuthConfigError
from mesos_common.auth.rate_limits import RateLimiter, parse_rate_limits


def test_qps_and_capacity():
    rl = RateLimiter(parse_rate_limits({"limits": [
        {"principal": "fw", "qps": 2, "capacity": 4}, {"principal": "free"}]}))
    assert [rl.allow("fw", 0.0) for _ in range(5)] == [True] * 4 + [False]
    assert rl.allow("fw", 0.5) and not rl.allow("fw", 0.5)  # one token per half second
    assert all(rl.allow("free", 0.0) for _ in range(1000))
    assert all(rl.allow("other", 0.0) for _ in range(1000))  # no aggregate: unlimited


def test_aggregate_default_is_shared():
    rl = RateLimiter(parse_rate_limits({"aggregate_default_qps": 1,
                                        "aggregate_default_capacity": 2}))
    assert rl.allow("a", 0.0) and rl.allow("b", 0.0) and not rl.allow(None, 0.0)
    assert rl.allow("c", 1.0)


@pytest.mark.parametrize("doc, why", [
    ({"limits": [{"principal": "a", "qps": -1}]}, "qps"),
    ({"limits": [{"principal": "a", "qps": 1, "capacity": 0}]}, "capacity"),
    ({"limits": [{"qps": 1}]}, "principal"),
    ({"limits": [{"principal": "a"}, {"principal": "a"}]}, "twice"),
    ({"aggregate_default_capacity": 3}, "needs"),
    ({"limit": []}, "unknown"),
])
def test_bad_documents(doc, why):
    with pytest.raises(AuthConfigError, match=why):
        parse_rate_limits(doc)


@given(st.floats(0.5, 100), st.integers(1, 50),
       st.lists(st.floats(0, 10), min_size=1, max_size=200))
def test_never_more_than_capacity_plus_rate(qps, capacity, offsets):
    rl = RateLimiter(parse_rate_limits({"limits": [
        {"principal": "p", "qps": qps, "capacity": capacity}]}))
    times = sorted(offsets)
    allowed = sum(rl.allow("p", t) for t in times)
    assert allowed <= capacity + qps * (times[-1] - times[0]) + 1e-6
