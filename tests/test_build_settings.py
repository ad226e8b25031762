"""BuildConfig's settings: one-line help for every field, from_dict / to_dict round trips, unknown names named, and
``pnc-pack build --list-settings`` (plain lines and --json) without any other option."""

from __future__ import annotations

import json
from dataclasses import fields

import pytest
from click.testing import CliRunner

from pnc_pack.builder.config import BuildConfig
from pnc_pack.cli import cli
from pnc_pack.cli._build_opts import parse_settings
from pnc_pack.errors import UsageError

NAMES = [f.name for f in fields(BuildConfig)]


def test_every_field_has_one_line_help():
    rows = BuildConfig.settings_help()
    assert [r[0] for r in rows] == NAMES
    for f in fields(BuildConfig):
        text = f.metadata.get("help", "")
        assert text.strip() and "\n" not in text, f.name
    for name, kind, default, text in rows:
        assert getattr(BuildConfig(), name) == default and kind and text


def test_defaults_are_unchanged():
    """The defaults go into every delta's provenance: changing one changes the bytes a build writes."""
    assert BuildConfig().to_dict() == {
        "data_fraction": 0.1, "grid": 4, "masks_per_anchor": 100, "mask_rate": 0.3, "kernel_width": 0.25,
        "ridge": 0.01, "holdout": 0.2, "steps": 200, "pool_size": 20000, "retune_steps": 100, "batch_size": 128,
        "lr": 0.001, "mask_lr": 0.05, "mask_init": 3.0, "sparsity": 0.05, "temperature": 4.0, "loc_weight": 1.0,
        "kd_weight": 1.0, "ce_weight": 1.0, "neg_weight": 3.0, "neg_target_conf": 0.9, "neg_source_max": 0.5,
        "neg_novelty": 0.99, "neg_masks": 0, "negatives": "typical", "inversion_copies": 3, "inversion_steps": 30,
        "route_recall": 0.95, "route_recall_multi": 0.97, "search": True, "localize": True, "positions": None}
    from pnc_pack.builder.config import LATE

    # settings added later (LATE) are named in the provenance only when not at their default
    assert list(BuildConfig().to_dict()) == [n for n in NAMES if n not in LATE]


@pytest.mark.parametrize("cfg", [
    BuildConfig(),
    BuildConfig(positions=(0, 2), route_recall=None, negatives="inversion", search=False, steps=7, neg_weight=3),
])
def test_from_dict_round_trips_to_dict(cfg):
    d = cfg.to_dict()
    assert BuildConfig.from_dict(d) == cfg
    again = BuildConfig.from_dict(json.loads(json.dumps(d)))  # as read back from a delta's JSON provenance
    assert again == cfg and isinstance(again.positions, (tuple, type(None)))
    assert json.dumps(again.to_dict()) == json.dumps(d)


def test_from_dict_takes_part_of_the_settings():
    assert BuildConfig.from_dict({}) == BuildConfig()
    assert BuildConfig.from_dict({"positions": [1], "steps": 5}) == BuildConfig(positions=(1,), steps=5)


def test_unknown_settings_are_named_with_the_known_ones():
    with pytest.raises(UsageError) as exc:
        BuildConfig.from_dict({"stepz": 3, "steps": 3, "lr_x": 1})
    msg = str(exc.value)
    assert "'lr_x'" in msg and "'stepz'" in msg and "known:" in msg
    assert all(n in msg.split("known:")[1] for n in NAMES)
    with pytest.raises(UsageError, match="unknown build setting 'nope'"):
        BuildConfig.with_overrides(nope=1)


@pytest.mark.parametrize("bad, what", [
    ({"steps": "3"}, "steps"), ({"search": 1}, "search"), ({"positions": [0.5]}, "positions"),
    ({"neg_weight": None}, "neg_weight"), ({"holdout": 1.5}, "holdout"), ({"negatives": "none"}, "negatives"),
])
def test_from_dict_checks_types_and_ranges(bad, what):
    with pytest.raises(UsageError, match=what):
        BuildConfig.from_dict(bad)


def test_from_dict_wants_a_mapping():
    with pytest.raises(UsageError, match="mapping"):
        BuildConfig.from_dict([("steps", 3)])


def test_set_goes_through_the_same_checks():
    assert parse_settings(["positions=0,1", "route-recall=none", "search=false"], steps=9) == {
        "positions": (0, 1), "route_recall": None, "search": False, "steps": 9}
    with pytest.raises(UsageError, match="unknown build settings 'a', 'b'"):
        parse_settings(["b=1", "a=2"])
    with pytest.raises(UsageError, match="holdout"):
        parse_settings(["holdout=2"])  # out of range: fails before any data or model is loaded


def _invoke(*args):
    res = CliRunner().invoke(cli, ["build", *args])
    assert res.exit_code == 0, res.output
    return res.output


def _shown(v):
    return "none" if v is None else ("true" if v else "false") if isinstance(v, bool) else str(v)


def test_list_settings_needs_no_other_option():
    out = _invoke("--list-settings")
    lines = out.splitlines()
    assert len(lines) == len(NAMES)
    for line, (name, kind, default, text) in zip(lines, BuildConfig.settings_help()):
        assert line.split()[0] == f"{name}={_shown(default)}" and f"({kind})" in line and text in line


def test_list_settings_json():
    for args in (["--list-settings", "--json"], ["--json", "--list-settings"]):
        rows = json.loads(_invoke(*args))
        assert [r["name"] for r in rows] == NAMES
        by_name = {r["name"]: r for r in rows}
        assert by_name["route_recall"]["default"] == 0.95 and by_name["positions"]["default"] is None
        assert by_name["negatives"]["type"] == "str" and all(r["help"] for r in rows)


def test_build_help_mentions_set_and_list_settings():
    out = _invoke("--help")
    assert "--set NAME=VALUE" in out and "--list-settings" in out
