"""`corral config ...` and `corral completion SHELL`."""
from __future__ import annotations

from typing import Any

import click

from corral.cmd_master import json_option
from corral.config import KEYS, config_path, resolve, write_key
from corral.output import emit_json, table


@click.group()
def config() -> None:
    """The CLI's config file ($XDG_CONFIG_HOME/corral/config.toml)."""


@config.command("set")
@click.argument("key", type=click.Choice(KEYS))
@click.argument("value")
def config_set(key: str, value: str) -> None:
    """Remember a setting (flags and CORRAL_* variables still win)."""
    path = config_path()
    write_key(path, key, value)
    shown = "(set)" if key == "secret" else resolve(key, None, {}, path)[0]
    click.echo(f"{key} = {shown} ({path})")


@config.command("unset")
@click.argument("key", type=click.Choice(KEYS))
def config_unset(key: str) -> None:
    """Forget a setting (back to the default)."""
    write_key(config_path(), key, None)


@config.command("show")
@json_option
@click.pass_obj
def config_show(env: Any, as_json: bool) -> None:
    """The settings in use and where each comes from (never the secret itself)."""
    rows = {k: resolve(k, env.flags.get(k)) for k in KEYS}
    if rows["secret"][0] is not None:
        rows["secret"] = ("(set)", rows["secret"][1])
    if as_json:
        emit_json({k: {"value": a, "from": w} for k, (a, w) in rows.items()})
        return
    table(["KEY", "VALUE", "FROM"], [(k, a, w) for k, (a, w) in rows.items()])


@click.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
@click.pass_context
def completion(ctx: click.Context, shell: str) -> None:
    """Print the completion script: eval "$(corral completion bash)"."""
    from click.shell_completion import get_completion_class
    root = ctx.find_root().command
    cls = get_completion_class(shell)
    assert cls is not None
    click.echo(cls(root, {}, "corral", "_CORRAL_COMPLETE").source())
