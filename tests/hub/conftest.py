"""Fixtures of the hub tests: loopback-only servers, model folders, clone deltas, child processes.

- Every hub test runs with ``netguard`` installed (a host other than 127.0.0.1 fails the test at once) and with
  ``HF_ENDPOINT`` set to a dead loopback port until the test points it at a server, a throw-away ``HF_HOME``, no
  token, online, no progress bars.
- ``hub``: our own Hub-compatible server (tests/hub/server.py) on a random free port, tokens ``hf_write`` (may
  write) and ``hf_read`` (read-only). ``hf_env``: the environment of "machine A" (HF_ENDPOINT -> hub, its own
  HF_HOME, HF_TOKEN=hf_write); ``hf_env.machine(name)`` is the environment of another machine (fresh HF_HOME).
- ``olah``: a real olah server (``olah-cli``) on a random free port serving git repositories the test writes.
- ``run_child(mode, *args, env=...)``: tests/hub/child.py in a separate process.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.hub import netguard
from tests.hub import olah_mirror as olah_mod
from tests.hub import server as server_mod
from tests.hub.hub_helpers import (
    _CLEARED,
    DEAD_ENDPOINT,
    READ_TOKEN,
    WRITE_TOKEN,
    ChildResult,
    HubEnv,
    child_cmd,
    write_model,
)


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch, tmp_path):
    netguard.install(monkeypatch.setattr)
    for var in _CLEARED:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", DEAD_ENDPOINT)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home-default"))
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.setenv("HF_HUB_DISABLE_UPDATE_CHECK", "1")
    monkeypatch.setenv("PNC_PACK_QUIET", "1")
    import huggingface_hub.constants as hfc

    monkeypatch.setattr(hfc, "HF_HUB_OFFLINE", False)  # a developer's HF_HUB_OFFLINE=1 must not leak in
    # huggingface_hub read HF_ENDPOINT once, at its import (under xdist, in another test file, before this fixture
    # ran); its user-agent code fetches ENDPOINT/api/agent-harnesses with it. Point it at the dead port as if it had
    # been imported here; the URL template moves with it (hf_hub_url swaps ENDPOINT for the endpoint it is given).
    monkeypatch.setattr(hfc, "ENDPOINT", DEAD_ENDPOINT)
    monkeypatch.setattr(hfc, "HUGGINGFACE_CO_URL_TEMPLATE", DEAD_ENDPOINT + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setattr(hfc, "AGENT_HARNESSES_PATH", str(tmp_path / "hf-home-default" / ".agent_harnesses.json"))


@pytest.fixture
def hub():
    with server_mod.FakeHub(tokens={WRITE_TOKEN: True, READ_TOKEN: False}) as h:
        yield h


@pytest.fixture
def hf_env(hub, tmp_path, monkeypatch):
    return HubEnv(hub, tmp_path, monkeypatch)


# -- child processes -----------------------------------------------------------------------------------------------
@pytest.fixture
def run_child():
    def run(mode: str, *args: str, env: dict, timeout: float = 90) -> ChildResult:
        proc = subprocess.run(child_cmd(mode, *args), env=env, capture_output=True, text=True, timeout=timeout)
        res = ChildResult(proc)
        assert proc.returncode not in (98, 99), res  # 98/99: the child would have left loopback
        return res

    return run


# -- model folders and deltas --------------------------------------------------------------------------------------
@pytest.fixture
def make_model(tmp_path):
    def make(name: str, **kw) -> Path:
        return write_model(tmp_path / "models" / name, **kw)

    return make


# -- olah --------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def olah(tmp_path_factory):
    root = tmp_path_factory.mktemp("olah")
    server = olah_mod.OlahServer(root)
    try:
        server.start()
    except olah_mod.OlahUnavailable as exc:
        pytest.fail(f"olah could not be started: {exc}")
    yield server
    server.stop()
