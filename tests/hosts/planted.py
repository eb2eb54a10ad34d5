"""Marathon with a bug planted on purpose, to show that a chaos round catches it and that
the round then replays from its seed (`python -m tests.hosts.chaos --plant NAME`).

    no-surplus-kill   Marathon never asks after unreachable tasks, so the surplus of a healed
                      partition lives on until expungeAfterSeconds
"""
from __future__ import annotations

import os
import runpy

PLANTS = ("no-surplus-kill",)


def plant(name: str) -> None:
    if name == "no-surplus-kill":
        import marathon.core_base
        marathon.core_base.UNREACHABLE_RECONCILE_S = float("inf")
    else:
        raise SystemExit(f"unknown plant {name!r}; one of {', '.join(PLANTS)}")


if __name__ == "__main__":
    plant(os.environ.get("CORRAL_PLANT", ""))
    runpy.run_module("marathon", run_name="__main__", alter_sys=True)
