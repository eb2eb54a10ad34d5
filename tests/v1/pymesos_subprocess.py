"""The unmodified `pymesos.subprocess` module (its own scheduler and executor) against a
Corral master: check_output, call with a failing command, Popen(...).kill(). Prints one JSON
summary line. Python 2 (the module is Python 2 code).

usage: python pymesos_subprocess.py MASTER
"""
from __future__ import print_function

import json
import os
import sys
import time

os.environ["MESOS_MASTER"] = sys.argv[1]

from pymesos import subprocess as mesos_subprocess  # noqa: E402 (reads MESOS_MASTER)

SMALL = {"cpus": 0.1, "mem": 64}


def main():
    out = mesos_subprocess.check_output(["sh", "-c", "echo hello from $0", "mesos"], **SMALL)
    failed = mesos_subprocess.call(["sh", "-c", "exit 3"], **SMALL)
    started = time.time()
    proc = mesos_subprocess.Popen(["sleep", "300"], **SMALL)
    proc.kill()
    killed = proc.wait()
    print(json.dumps({"output": out.decode(), "failed": failed, "killed": killed,
                      "kill_seconds": time.time() - started}))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
