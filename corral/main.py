"""The `corral` entry point: global options, lazily loaded command groups, one error policy.

Each command group lives in its own module and is imported only when it runs (or when
completion asks for it), so `corral --help` and `corral app list` start fast. Errors a user
can act on (`CliError`: API errors, unreachable addresses, bad files) are one line on stderr
and exit code 1; usage errors are click's, exit code 2.
"""
from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from corral import __version__

COMMANDS = {
    "cluster": ("corral.cmd_master", "cluster"),
    "agent": ("corral.cmd_master", "agent"),
    "framework": ("corral.cmd_master", "framework"),
    "task": ("corral.cmd_task", "task"),
    "app": ("corral.cmd_app", "app"),
    "deployment": ("corral.cmd_deploy", "deployment"),
    "group": ("corral.cmd_deploy", "group"),
    "queue": ("corral.cmd_deploy", "queue"),
    "stack": ("corral.cmd_stack", "stack"),
    "config": ("corral.cmd_config", "config"),
    "completion": ("corral.cmd_config", "completion"),
}
HELP = {
    "cluster": "Leader, version, agents and pooled resources.",
    "agent": "Agents of the cluster.",
    "framework": "Frameworks registered with the master.",
    "task": "Tasks, their sandboxes and logs.",
    "app": "Marathon apps.",
    "deployment": "Marathon deployments.",
    "group": "Marathon groups.",
    "queue": "Marathon's launch queue.",
    "stack": "Compose files deployed as Marathon groups.",
    "config": "The CLI's config file.",
    "completion": "Shell completion script (bash, zsh or fish).",
}


class LazyGroup(click.Group):
    """Subcommands named in COMMANDS, imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        where = COMMANDS.get(name)
        if where is None:
            return None
        return getattr(importlib.import_module(where[0]), where[1])

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):  # help texts without importing every module
            formatter.write_dl([(n, HELP[n]) for n in self.list_commands(ctx)])

    def invoke(self, ctx: click.Context) -> Any:
        from corral.errors import CliError
        try:
            return super().invoke(ctx)
        except CliError as e:
            click.echo(f"corral: error: {e}", err=True)
            ctx.exit(1)
        except KeyboardInterrupt:
            click.echo("corral: interrupted", err=True)
            ctx.exit(130)


class Env:
    """What every command needs: where the APIs are, and clients for them (made lazily)."""

    def __init__(self, flags: dict[str, str | None]) -> None:
        self.flags = flags
        self._clients: dict[str, Any] = {}

    def setting(self, key: str) -> Any:
        from corral.config import resolve
        return resolve(key, self.flags.get(key))[0]

    def client(self, key: str) -> Any:
        if key not in self._clients:
            from corral.client import Client
            from corral.config import master_url, secret_value
            url = self.setting(key)
            if key == "master":
                url = master_url(url, self.setting("ca_cert"))
            principal, secret = self.setting("principal"), self.setting("secret")
            auth = (principal, secret_value(secret)) if principal and secret else None
            self._clients[key] = Client(url, "master" if key == "master" else "Marathon",
                                        auth=auth, ca_cert=self.setting("ca_cert"))
        return self._clients[key]

    @property
    def master(self) -> Any:
        return self.client("master")

    @property
    def marathon(self) -> Any:
        return self.client("marathon")


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--master", metavar="URL", help="Master address: http://host:port, host:port, "
              "a comma list, or zk://host:port/path [env CORRAL_MASTER; default "
              "127.0.0.1:5050].")
@click.option("--marathon", metavar="URL", help="Marathon address [env CORRAL_MARATHON; "
              "default 127.0.0.1:8080].")
@click.option("--principal", help="HTTP principal (Basic auth) [env CORRAL_PRINCIPAL].")
@click.option("--secret", help="Its secret, or file:///path holding it [env CORRAL_SECRET].")
@click.option("--ca-cert", "ca_cert", metavar="PEM", help="CA that signed the servers' TLS "
              "certificates [env CORRAL_CA_CERT].")
@click.version_option(__version__, "-V", "--version", prog_name="corral")
@click.pass_context
def cli(ctx: click.Context, **flags: str | None) -> None:
    """Drive a Corral cluster: master, agents, tasks, Marathon apps and Compose stacks."""
    ctx.obj = Env(flags)


def main(argv: list[str] | None = None) -> int:
    try:
        cli.main(args=argv, prog_name="corral", standalone_mode=True)
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
