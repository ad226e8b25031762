"""Helpers shared by the hub tests (``from tests.hub.hub_helpers import ...``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent

WRITE_TOKEN = "hf_write"
READ_TOKEN = "hf_read"
DEAD_ENDPOINT = "http://127.0.0.1:9"
_CLEARED = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_CACHE",
            "HUGGINGFACE_HUB_CACHE", "HF_TOKEN_PATH", "HF_HUB_ETAG_TIMEOUT", "HUGGINGFACE_CO_STAGING")


class HubEnv:
    def __init__(self, hub, tmp_path: Path, monkeypatch):
        self.hub, self.tmp = hub, tmp_path
        self.home = tmp_path / "machine-a"
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        monkeypatch.setenv("HF_HOME", str(self.home))
        monkeypatch.setenv("HF_TOKEN", WRITE_TOKEN)

    def machine(self, name: str, *, token: str | None = None, offline: bool = False, endpoint: str | None = None,
                home: Path | None = None) -> dict:
        """The environment of another machine: its own empty HF_HOME, no token unless given."""
        env = {k: v for k, v in os.environ.items() if k not in _CLEARED}
        env.update(HF_ENDPOINT=endpoint or self.hub.url, HF_HOME=str(home or self.tmp / name),
                   HF_HUB_DISABLE_PROGRESS_BARS="1", HF_HUB_DISABLE_TELEMETRY="1", PNC_PACK_QUIET="1")
        if token:
            env["HF_TOKEN"] = token
        if offline:
            env["HF_HUB_OFFLINE"] = "1"
        return env


class ChildResult:
    def __init__(self, proc: subprocess.CompletedProcess):
        self.returncode, self.stdout, self.stderr = proc.returncode, proc.stdout, proc.stderr

    def json(self):
        return json.loads(self.stdout)

    def __repr__(self):
        return f"<child rc={self.returncode} stdout={self.stdout[-800:]!r} stderr={self.stderr[-1500:]!r}>"


def child_cmd(mode: str, *args: str) -> list[str]:
    return [sys.executable, str(HERE / "child.py"), mode, *args]


def write_model(folder: Path, *, names=("0", "1", "2", "3", "4"), seed: int = 0, arch: str = "lenet5") -> Path:
    """A model folder (config.json via the zoo's ModelConfig, model.safetensors via safetensors.numpy), torch-free.

    The weights are random arrays: the hub code only moves and hashes the files, it never builds the network.
    """
    from safetensors.numpy import save

    from pnc_pack.zoo.config import ModelConfig

    folder.mkdir(parents=True, exist_ok=True)
    cfg = ModelConfig(arch=arch, arch_args={"num_classes": len(names), "in_channels": 1, "image_size": 28},
                      classes=[{"label": i, "name": n} for i, n in enumerate(names)], input_shape=[1, 28, 28],
                      training={"seed": seed})
    rng = np.random.RandomState(seed)
    tensors = {"head.weight": rng.standard_normal((len(names), 84)).astype(np.float32),
               "head.bias": rng.standard_normal((len(names),)).astype(np.float32),
               "blocks.0.conv.weight": rng.standard_normal((6, 1, 5, 5)).astype(np.float32)}
    (folder / "model.safetensors").write_bytes(save(tensors, metadata={"format": "pt"}))
    (folder / "config.json").write_bytes(cfg.to_json())
    return folder


def make_delta(target_ref, source_refs, *, metrics=None, seed: int = 0):
    """A small, valid synthetic CloneDelta (pnc_pack.format.testing) that pins the given refs."""
    from dataclasses import replace

    from pnc_pack.format import testing

    d = testing.make_delta(len(source_refs), seed=seed, metrics=metrics)
    return replace(d, target=target_ref,
                   modules=tuple(replace(m, source=src) for m, src in zip(d.modules, source_refs)))


def run_readme_block(heading: str, cwd: Path, timeout: float = 600, **env_extra: str) -> subprocess.CompletedProcess:
    """The first ```bash block of the README section ``heading``, run as written in ``cwd`` (bash -e -o pipefail)
    against the test server started the documented way (``python -m tests.hub.server``; its port put in for the
    README's 8080). A failing block fails the test with its output."""
    import re

    root = HERE.parents[1]
    text = (root / "README.md").read_text()
    section = text[text.index(heading):]
    assert "python -m tests.hub.server --port 8080" in section
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    server = subprocess.Popen([sys.executable, "-m", "tests.hub.server", "--port", "0"], cwd=root,
                              stdout=subprocess.PIPE, text=True)
    try:
        printed = [server.stdout.readline().strip() for _ in range(2)]
        endpoint = printed[0].removeprefix("export HF_ENDPOINT=")
        assert printed[0].startswith("export HF_ENDPOINT=http://127.0.0.1:") and printed[1].startswith("export HF_TOKEN=")
        assert printed[1].removeprefix("export ") in block  # the token the README exports is the server's
        env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
               "HF_HOME": str(cwd / "hf-home"), "PNC_PACK_QUIET": "1", "HF_HUB_DISABLE_TELEMETRY": "1", **env_extra}
        env.pop("HF_HUB_OFFLINE", None)
        r = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", block.replace("http://127.0.0.1:8080", endpoint)],
                           cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    finally:
        server.terminate()
        server.wait(timeout=10)
    return r
