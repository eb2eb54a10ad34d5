"""Tables for people, JSON for scripts, and the rich console progress bars draw on."""
from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from typing import Any


def emit_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2) + "\n")


def console(stderr: bool = False) -> Any:
    from rich.console import Console
    stream = sys.stderr if stderr else sys.stdout
    # Piped output keeps whole rows (no wrapping at 80 columns).
    return Console(file=stream, width=None if stream.isatty() else 240, highlight=False)


def table(columns: Sequence[str], rows: Iterable[Sequence[Any]], title: str | None = None,
          empty: str = "") -> None:
    """Aligned columns, kubectl/docker style: plain text, so long listings print at once
    (rich measures every cell, far too slow for those) and pipes get whole lines."""
    cells = [[cell(v) for v in r] for r in rows]
    if not cells and empty:
        sys.stdout.write(empty + "\n")
        return
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    lines = [title] if title else []
    for r in [list(columns)] + cells:
        lines.append("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())
    sys.stdout.write("\n".join(lines) + "\n")


def fields(pairs: Iterable[tuple[str, Any]]) -> None:
    """A two-column `key  value` view of one object."""
    table(["FIELD", "VALUE"], [(k, v) for k, v in pairs])


def cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, (list, tuple)):
        return ", ".join(str(x) for x in v) or "-"
    if isinstance(v, dict):
        return ", ".join(f"{k}={x}" for k, x in v.items()) or "-"
    return " ".join(str(v).split())


def note(message: str) -> None:
    sys.stderr.write(message + "\n")
