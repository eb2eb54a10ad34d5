"""Every command exits 2 with a one-line error on bad flags or bad MESOS_* values."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

CASES = [
    (["mesos_master", "--port=99999"], {}, "port"),
    (["mesos_master", "--registry=in_memory", "--bogus"], {}, "unrecognized"),
    (["mesos_master", "--registry=in_memory"], {"MESOS_AGENT_PING_TIMEOUT": "soon"},
     "MESOS_AGENT_PING_TIMEOUT"),
    (["mesos_agent", "--master=127.0.0.1:1", "--work_dir=/tmp/x", "--resources=cpus:abc"], {},
     "cpus"),
    (["mesos_agent", "--work_dir=/tmp/x"], {}, "master"),
    (["mesos_agent", "--master=127.0.0.1:1", "--work_dir=/tmp/x", "--containerizers=lxc"], {},
     "containerizers"),
    (["mesos_agent", "--master=127.0.0.1:1", "--work_dir=/tmp/x"],
     {"MESOS_CONTAINERIZERS": "auto,docker"}, "containerizers"),
    (["mesos_master.local", "--num_agents=0"], {}, "positive"),
    (["mesos_master.local", "--resources=cpus:-1"], {}, "resources"),
    (["mesos_master.local", "--containerizers=docker,sim"], {}, "containerizers"),
    (["frameworks.examples.execute", "--master=127.0.0.1:1", "--name=x"], {}, "command"),
    (["frameworks.examples.batch", "--master=nohostport", "--command=true"], {}, "master"),
    (["mesos_master", "--registry=in_memory", "--authenticate_agents"], {}, "--credentials"),
    (["mesos_master", "--registry=in_memory", "--acls={bad"], {}, "acls"),
    (["mesos_master", "--registry=in_memory", "--credentials=/nonexistent"], {}, "cannot read"),
    (["mesos_master", "--registry=in_memory", "--zmq_curve"], {}, "zmq_curve_cert"),
    (["mesos_master", "--registry=in_memory", "--ssl_cert=/nonexistent"], {}, "ssl_key"),
    (["mesos_agent", "--master=127.0.0.1:1", "--work_dir=/tmp/x",
      "--master_public_key=/nonexistent"], {}, "CURVE certificate"),
    (["frameworks.examples.execute", "--master=127.0.0.1:1", "--name=x", "--command=true",
      "--principal=p"], {}, "--secret"),
]


@pytest.mark.parametrize("argv,env,needle", CASES, ids=lambda c: str(c)[:40])
def test_bad_flags_exit_2_with_one_line(argv, env, needle):
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("MESOS_")} | env
    r = subprocess.run([sys.executable, "-m", *argv], capture_output=True, text=True,
                       timeout=60, env=full_env)
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], r.stderr
