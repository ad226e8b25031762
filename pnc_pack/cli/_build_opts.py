"""What ``build`` and ``add`` share: class lists, builder settings (``--set NAME=VALUE``, ``--list-settings``), and
the report lines."""

from __future__ import annotations

import click

from pnc_pack.errors import UsageError


def parse_classes(value: str, flag: str = "--clone-classes") -> list[int]:
    """``5,6,7`` -> [5, 6, 7]; an empty item (``5,,6``, ``5,``), a non-integer or a class given twice is a
    UsageError naming the flag."""
    items = [v.strip() for v in value.split(",")]
    if not "".join(items):
        raise UsageError(f"{flag}: at least one class")
    if "" in items:
        raise UsageError(f"{flag}: empty item in {value!r}: expected comma-separated integers like 5,6,7")
    try:
        out = [int(v) for v in items]
    except ValueError:
        raise UsageError(f"{flag}: expected comma-separated integers, got {value!r}") from None
    twice = sorted({c for c in out if out.count(c) > 1})
    if twice:
        raise UsageError(f"{flag}: class {twice[0]} given twice in {value!r}")
    return out


def _value(name: str, kind: str, text: str):
    t = text.strip()
    if "None" in kind and t.lower() == "none":  # an optional setting switched off, e.g. route_recall=none
        return None
    if kind.startswith("str"):
        return t
    try:
        if kind.startswith("bool"):
            if t.lower() not in ("1", "0", "true", "false", "yes", "no"):
                raise ValueError(t)
            return t.lower() in ("1", "true", "yes")
        if kind.startswith("int"):
            return int(t)
        if kind.startswith("float"):
            return float(t)
        if kind.startswith("tuple"):
            return None if t.lower() in ("", "none") else tuple(int(v) for v in t.split(",") if v.strip())
    except ValueError:
        raise UsageError(f"--set {name}: cannot read {text!r} as {kind}") from None
    raise UsageError(f"--set {name}: unsupported setting type {kind}")


def parse_settings(pairs, **named) -> dict:
    """``--set NAME=VALUE`` pairs (BuildConfig field names) plus named options that were given (not None).

    Each value is read as its field's type, then the whole set goes through ``BuildConfig.from_dict``, the one
    check every way of passing settings shares: unknown names and out-of-range values fail here, before any data
    or model is loaded."""
    from dataclasses import fields

    from pnc_pack.builder.config import BuildConfig

    kinds = {f.name: str(f.type) for f in fields(BuildConfig)}
    out = {k: v for k, v in named.items() if v is not None}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise UsageError(f"--set: expected NAME=VALUE, got {pair!r}")
        out[key] = _value(key, kinds[key], text) if key in kinds else text
    BuildConfig.from_dict(out)  # unknown names (all of them, with the known ones), wrong types, values out of range
    return out


def _shown(value) -> str:
    """A default as ``--set`` reads it back: none, true/false, 0,1 for a tuple."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return str(value)


def print_settings(as_json: bool = False) -> None:
    """Every builder setting with its type, default and help: JSON, a rich table on a terminal, else one
    ``name=default  (type)  help`` line each (the ``name=default`` part is a valid ``--set`` argument)."""
    import sys

    from pnc_pack.builder.config import BuildConfig
    from pnc_pack.cli._common import emit_json

    rows = BuildConfig.settings_help()
    if as_json:
        emit_json([{"name": n, "type": k, "default": list(d) if isinstance(d, tuple) else d, "help": h}
                   for n, k, d, h in rows])
        return
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table

        table = Table(title="pnc-pack build settings (--set NAME=VALUE)", title_justify="left")
        for col in ("name", "type", "default", "help"):
            table.add_column(col, overflow="fold", no_wrap=col != "help")
        for n, k, d, h in rows:
            table.add_row(n, k, _shown(d), h)
        Console().print(table)
        return
    width = max(len(n) + 1 + len(_shown(d)) for n, _, d, _ in rows)
    kind_width = max(len(k) for _, k, _, _ in rows) + 2
    for n, k, d, h in rows:
        click.echo(f"{n + '=' + _shown(d):<{width}}  {'(' + k + ')':<{kind_width}}  {h}")


class _ListSettings(click.Option):
    """``--list-settings``: print the settings and exit 0 before any required option is checked (an eager option
    that also reads ``--json``, which click would otherwise only see later)."""

    def handle_parse_result(self, ctx, opts, args):
        if opts.get(self.name):
            print_settings(as_json=bool(opts.get("as_json")))
            ctx.exit(0)
        return super().handle_parse_result(ctx, opts, args)


def list_settings_option(f):
    return click.option("--list-settings", cls=_ListSettings, is_flag=True, is_eager=True, expose_value=False,
                        help="Print every builder setting (for --set) with its type, default and help, then exit; "
                             "with --json as JSON.")(f)


def builder_options(f):
    """--data-fraction, --seed, --steps, --set NAME=VALUE, --eval-data, -o/--output and --force, in that order."""
    opts = [
        click.option("--data-fraction", type=click.FloatRange(0, 1, min_open=True), default=None,
                     help="Share of the to-be-cloned training samples used (default 0.1, as the paper on MNIST)."),
        click.option("--seed", type=click.IntRange(0), default=0, show_default=True),
        click.option("--steps", type=click.IntRange(1), default=None, help="Training steps per insertion position."),
        click.option("--set", "settings", multiple=True, metavar="NAME=VALUE",
                     help="Any builder setting, e.g. --set retune_steps=50 (optional ones take none). Repeatable. "
                          "Every setting with its default and help: pnc-pack build --list-settings."),
        click.option("--eval-data", default=None,
                     help="Dataset spec whose test split gives the metrics stored in the delta."),
        click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
                     help="Where to write the delta."),
        click.option("--force", is_flag=True, help="Overwrite OUTPUT if it already exists."),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


def module_lines(delta) -> list[str]:
    """One line per module of a built delta (R, R_s, mask density, held-out loss per R)."""
    from pnc_pack.format.compose import split

    lines = []
    _, parts = split(delta)
    for i, p in enumerate(parts):
        m = p.metrics
        kept, total = sum(k.kept for k in p.module.masks), sum(k.filters for k in p.module.masks)
        density = kept / total if total else 1.0
        line = (f"module {i}: {p.module.source.short()} clones {', '.join(p.class_names)}: "
                f"R={p.module.target_position} R_s={p.module.source_position}, mask density {density:.3f}")
        if isinstance(m.get("loss_per_R"), dict):
            line += "; held-out loss per R: " + ", ".join(f"R={r}: {v['total']:.4f}" for r, v in m["loss_per_R"].items())
        lines.append(line)
    return lines


def eval_lines(e: dict) -> list[str]:
    """Ori / Tar / Avg, and accuracy per functionality (the supplementary's Table 3) when present."""
    if e.get("k"):
        lines = [f"Ori {100 * e['ori']:.2f}%  Tar {100 * e['tar']:.2f}%  Avg {100 * e['avg']:.2f}%  "
                 f"({e['samples']} test images, {e['n_old']} target + {e['k']} cloned classes)"]
    else:
        lines = [f"target alone (no module): {100 * e['ori']:.2f}% ({e['samples']} test images)"]
    for f in e.get("functionalities", []):
        acc = "-" if f["acc"] is None else f"{100 * f['acc']:.2f}%"
        routed = e.get("routing", {}).get(f["name"], {})
        away = ", ".join(f"{100 * v:.1f}% to {k}" for k, v in routed.items() if k != f["name"] and v)
        lines.append(f"  {f['name']:<10} ({', '.join(f['classes'])}): {acc}" + (f"   [misrouted: {away}]" if away else ""))
    return lines
