"""Run the simulation for one seed or a sweep of seeds (safety phase, then liveness phase).

    python -m tests.sim.sweep --seeds 10000        # a long sweep (make sim SEEDS=10000)
    python -m tests.sim.sweep --seed 1234 -v       # replay one seed exactly
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence

from attrs import frozen

from tests.sim.cluster import SimCluster, SimOptions, SimViolation
from tests.sim.invariants import SAFETY, converged, marathon_pending


@frozen
class SimResult:
    seed: int
    steps: int
    virtual_s: float
    digest: str
    messages: int
    dropped: int
    marathon_ops: int = 0  # API calls made on Marathon (0: no Marathon in this seed)
    marathon_apps: int = 0  # apps left at the end, all converged
    health_kills: int = 0  # tasks agents killed for failing their health checks


def run_seed(seed: int, options: SimOptions | None = None) -> SimResult:
    """Run one seed; raises SimViolation (naming the seed) on any broken invariant."""
    o = options or SimOptions.swarm(seed)
    c = SimCluster(o)
    c.checks = list(SAFETY)
    try:
        c.start()
        c.run_until(o.safety_time)
        c.heal()
        if not c.run_until(o.safety_time + o.liveness_time, stop=lambda: converged(c)):
            pending: dict[str, Sequence[object]] = {
                f.name: [*sorted(f.policy.todo)[:3], *sorted(f.policy.running)[:3]]
                for f in c.frameworks.values() if f.policy and not f.policy.done()}
            if c.marathon is not None:
                pending["marathon"] = marathon_pending(c)
            raise SimViolation(seed, f"did not converge within {o.liveness_time:.0f}s after "
                               f"healing; unfinished: {pending}", list(c.trace))
    except SimViolation:
        raise
    except Exception as e:  # an invariant or a core assertion: report with the seed
        raise SimViolation(seed, f"{type(e).__name__}: {e}", list(c.trace)) from e
    mara = c.marathon
    return SimResult(seed, c.steps, round(c.now, 3), c.digest.hexdigest()[:16],
                     c.net.sent, c.net.dropped, mara.ops if mara else 0,
                     len(mara.state.apps) if mara and mara.state else 0, c.health_kills)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=100, help="sweep seeds 0..N-1")
    ap.add_argument("--first", type=int, default=0)
    ap.add_argument("--seed", type=int, help="run only this seed")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    logging.getLogger("marathon").setLevel(logging.ERROR)  # its warnings are in the trace
    seeds = [args.seed] if args.seed is not None else range(args.first, args.first + args.seeds)
    failures = mesos_retry = kills = 0
    t0 = time.monotonic()
    for seed in seeds:
        try:
            mesos_retry += SimOptions.swarm(seed).mesos_status_retry
            r = run_seed(seed)
            kills += r.health_kills
            if args.verbose:
                print(f"seed {seed}: ok {r}", flush=True)
        except SimViolation as e:
            failures += 1
            print(f"FAIL {e}", flush=True)
    n = len(seeds)
    print(f"{n - failures} passed, {failures} failed  ({time.monotonic() - t0:.1f}s; "
          f"{mesos_retry} with Mesos's status-update retries, {kills} health-check kills)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
