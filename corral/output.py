"""Tables for people (rich), JSON for scripts. rich is imported only when a table is drawn."""
from __future__ import annotations

import json
import sys
from typing import Any, Iterable, Sequence


def emit_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2) + "\n")


def console(stderr: bool = False) -> Any:
    from rich.console import Console
    stream = sys.stderr if stderr else sys.stdout
    # Piped output keeps whole rows (no wrapping at 80 columns).
    return Console(file=stream, width=None if stream.isatty() else 240, highlight=False)


def table(columns: Sequence[str], rows: Iterable[Sequence[Any]], title: str | None = None,
          empty: str = "") -> None:
    rows = [[cell(v) for v in r] for r in rows]
    if not rows and empty:
        sys.stdout.write(empty + "\n")
        return
    from rich import box
    from rich.table import Table
    t = Table(*columns, title=title, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False,
              highlight=False)
    for r in rows:
        t.add_row(*r)
    console().print(t)


def fields(pairs: Iterable[tuple[str, Any]]) -> None:
    """A two-column `key  value` view of one object."""
    table(["FIELD", "VALUE"], [(k, v) for k, v in pairs])


def cell(v: Any) -> str:
    from rich.markup import escape
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, (list, tuple)):
        return escape(", ".join(str(x) for x in v)) or "-"
    if isinstance(v, dict):
        return escape(", ".join(f"{k}={x}" for k, x in v.items())) or "-"
    return escape(str(v))


def note(message: str) -> None:
    sys.stderr.write(message + "\n")
