"""`corral` against `mesos-local --secure` (TLS and HTTP authentication on the master): the
credentials and the CA come from flags, the environment or the config file."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from mesos_common.daemons import kill_task_processes
from tests.helpers import search, start_mesos_local

pytestmark = pytest.mark.slow
CORRAL = str(Path(sys.executable).with_name("corral"))


def test_credentials_and_ca_reach_a_secure_master(tmp_path: Path):
    proc, out = start_mesos_local("--secure", "--num_agents=1", "--port=0", "--no-marathon",
                                  f"--work_dir={tmp_path}",
                                  "--resources=cpus:1;mem:256;ports:[31000-31001]")
    try:
        assert "ready" in out, out
        master = search(r"mesos-local: master (https://\S+) ", out).group(1)
        secure = tmp_path / "secure"
        env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "config"), CORRAL_MASTER=master)

        def corral(*args: str, code: int = 0, **extra: str) -> subprocess.CompletedProcess:
            p = subprocess.run([CORRAL, *args], env=dict(env, **extra), capture_output=True,
                               text=True, timeout=60)
            assert p.returncode == code, (args, p.stdout, p.stderr)
            return p

        err = corral("cluster", code=1).stderr.strip()
        assert err.startswith(f"corral: error: TLS with the master at {master} failed")
        ca = str(secure / "ca.pem")
        err = corral("--ca-cert", ca, "cluster", code=1).stderr.strip()
        assert err.startswith(f"corral: error: GET {master}/master/state: 401"), err
        secret = f"file://{secure / 'operator.secret'}"
        shown = corral("--ca-cert", ca, "--principal", "operator", "--secret", secret,
                       "cluster").stdout
        assert "1 active of 1" in shown
        corral("config", "set", "principal", "operator")
        corral("config", "set", "secret", secret)
        agents = corral("agent", "list", "--json", CORRAL_CA_CERT=ca).stdout
        assert '"hostname"' in agents
        wrong = corral("--secret", "nope", "cluster", code=1, CORRAL_CA_CERT=ca).stderr
        assert ": 401 " in wrong
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
        kill_task_processes(tmp_path / "agent1")
