"""Long work off a terminal prints plain progress lines on stderr (issue 20, item 15): at most one per interval,
none with PNC_PACK_QUIET=1, and a terminal keeps its rich bars."""

from __future__ import annotations

import io

from pnc_pack import progress as P


class _Pipe(io.StringIO):
    def isatty(self):
        return False


def _run(monkeypatch, steps=5, **env):
    err = _Pipe()
    monkeypatch.setattr("sys.stderr", err)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with P.progress() as p:
        task = p.add("build: position R=2", total=steps)
        for _ in range(steps):
            p.advance(task)
        p.update(task, description="build: re-tune", completed=0, total=10)
    return err.getvalue().splitlines()


def test_plain_lines_off_a_terminal(monkeypatch):
    monkeypatch.delenv("PNC_PACK_QUIET", raising=False)
    lines = _run(monkeypatch, PNC_PACK_PROGRESS_INTERVAL="0")
    assert lines[0].startswith("pnc-pack: build: position R=2 1/5 (20%), ") and lines[0].endswith(" s")
    assert lines[4].startswith("pnc-pack: build: position R=2 5/5 (100%)") and "re-tune 0/10" in lines[5]


def test_at_most_one_line_per_interval(monkeypatch):
    monkeypatch.delenv("PNC_PACK_QUIET", raising=False)
    assert _run(monkeypatch, steps=1000) == []  # the default 10 s: fast work says nothing
    clock = iter(range(0, 10_000, 4))  # each reading 4 s later: a line at most every 10 s
    monkeypatch.setattr(P.time, "monotonic", lambda: next(clock))
    lines = _run(monkeypatch, steps=10)
    assert 2 <= len(lines) <= 5 and all(line.startswith("pnc-pack: build:") for line in lines)


def test_quiet(monkeypatch):
    assert _run(monkeypatch, PNC_PACK_QUIET="1", PNC_PACK_PROGRESS_INTERVAL="0") == []


def test_a_command_off_a_terminal(monkeypatch, capsys, tmp_path):
    from pnc_pack.cli import main

    monkeypatch.delenv("PNC_PACK_QUIET", raising=False)
    monkeypatch.setenv("PNC_PACK_PROGRESS_INTERVAL", "0")
    rc = main(["train", "--arch", "lenet5", "--data", "digits", "--classes", "0,1", "--epochs", "1",
               "-o", str(tmp_path / "m")])
    err = capsys.readouterr().err
    assert rc == 0 and "pnc-pack: train lenet5 on digits" in err and "(100%)" in err
