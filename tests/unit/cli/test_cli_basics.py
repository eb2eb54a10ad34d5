"""The CLI without a cluster: where it points (flag, env, config file, default), exit codes,
error lines, version and completion scripts."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from corral import __version__
from corral.client import describe
from corral.config import DEFAULTS, config_path, normalize, resolve, write_key
from corral.errors import CliError
from corral.main import cli
from mesos_common.daemons import free_port


@pytest.fixture
def run(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    monkeypatch.delenv("CORRAL_MASTER", raising=False)
    monkeypatch.delenv("CORRAL_MARATHON", raising=False)
    runner = CliRunner()
    return lambda *args, **kw: runner.invoke(cli, list(args), **kw)


def test_precedence_flag_then_env_then_file_then_default(tmp_path: Path):
    path = tmp_path / "corral" / "config.toml"
    assert resolve("marathon", None, {}, path) == (DEFAULTS["marathon"], "default")
    write_key(path, "marathon", "10.0.0.1:8080")
    assert resolve("marathon", None, {}, path) == ("http://10.0.0.1:8080", str(path))
    env = {"CORRAL_MARATHON": "https://m:1"}
    assert resolve("marathon", None, env, path) == ("https://m:1", "CORRAL_MARATHON")
    assert resolve("marathon", "f:2", env, path) == ("http://f:2", "--marathon")
    write_key(path, "marathon", None)
    assert resolve("marathon", None, {}, path)[1] == "default"


def test_config_file_follows_xdg_config_home(tmp_path: Path):
    assert config_path({"XDG_CONFIG_HOME": str(tmp_path)}) == tmp_path / "corral" / "config.toml"
    assert normalize("zk://h:2181/corral") == "zk://h:2181/corral"
    with pytest.raises(CliError, match="unknown config key"):
        write_key(tmp_path / "c.toml", "colour", "x")


def test_config_set_and_show(run, tmp_path: Path):
    r = run("config", "set", "master", "127.0.0.9:5050")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "cfg" / "corral" / "config.toml").read_text() == \
        'master = "http://127.0.0.9:5050"\n'
    r = run("config", "show", "--json")
    assert '"value": "http://127.0.0.9:5050"' in r.output
    r = run("--master", "h:1", "config", "show")
    assert "http://h:1" in r.output and "--master" in r.output


def test_unreachable_address_is_named_exit_1(run):
    port = free_port()
    r = run("--marathon", f"127.0.0.1:{port}", "app", "list")
    assert r.exit_code == 1
    assert r.output.strip() == f"corral: error: cannot reach the Marathon at " \
                               f"http://127.0.0.1:{port}: connection refused"


def test_usage_errors_exit_2(run):
    assert run("app", "scale", "web", "many").exit_code == 2
    assert run("no-such-command").exit_code == 2
    assert run("completion", "tcsh").exit_code == 2
    assert run("stack", "deploy", "name").exit_code == 2  # -c is required


def test_version_and_completion(run):
    r = run("--version")
    assert r.exit_code == 0 and r.output.strip() == f"corral, version {__version__}"
    for shell in ("bash", "zsh", "fish"):
        r = run("completion", shell)
        assert r.exit_code == 0 and "_CORRAL_COMPLETE" in r.output, shell
    assert "complete -o nosort -F _corral_completion corral" in run("completion", "bash").output


def test_completion_answers_subcommands(tmp_path: Path):
    env = {"_CORRAL_COMPLETE": "bash_complete", "COMP_WORDS": "corral app sc", "COMP_CWORD": "2",
           "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-m", "corral"], env=env, capture_output=True,
                         text=True, timeout=60)
    assert "plain,scale" in out.stdout.split()


def test_api_error_bodies_become_one_line():
    assert describe({"message": "Object is not valid", "details": [
        {"path": "/cpus", "errors": ["error.min", "must be >= 0"]}]}, "x") == \
        "Object is not valid (/cpus: error.min, must be >= 0)"
    assert describe({"error": "bad\nthing"}, "x") == "bad thing"
    assert describe("plain text\n", "x") == "plain text"
    assert describe(None, "Not Found") == "Not Found"


def test_bad_compose_file_is_refused_before_any_api_call(run, tmp_path: Path):
    # Marathon's address is closed: reaching it would say so; the file error comes first.
    f = tmp_path / "c.yml"
    f.write_text("services:\n  web:\n    image: i\n    ports: ['x:80']\n")
    r = run("--marathon", f"127.0.0.1:{free_port()}", "stack", "deploy", "-c", str(f), "s")
    assert r.exit_code == 1
    assert r.output.strip() == "corral: error: service 'web', key 'ports[0]': bad port spec " \
                               "'x:80' (expected [[IP:]PUBLISHED:]TARGET[/PROTOCOL])"
    f.write_text("services:\n  web:\n    image: i\n    restart: always\n    colour: red\n")
    r = run("--marathon", f"127.0.0.1:{free_port()}", "stack", "deploy", "--strict", "-c",
            str(f), "s")
    assert r.exit_code == 1 and r.output.strip() == (
        "corral: error: keys Corral cannot honour (--strict): services.web.colour, "
        "services.web.restart")


def test_credentials_come_from_the_same_places(run, tmp_path: Path, monkeypatch):
    secret = tmp_path / "op.secret"
    secret.write_text("s3cret\n")
    assert run("config", "set", "principal", "operator").exit_code == 0
    assert run("config", "set", "secret", f"file://{secret}").output.startswith("secret = (set)")
    monkeypatch.setenv("CORRAL_CA_CERT", "/etc/ca.pem")
    shown = run("config", "show", "--json").output
    assert '"principal": {\n    "value": "operator"' in shown and "s3cret" not in shown
    assert '"value": "/etc/ca.pem",\n    "from": "CORRAL_CA_CERT"' in shown
    from corral.config import secret_value
    assert secret_value(f"file://{secret}") == "s3cret" and secret_value("plain") == "plain"
