"""The hub client's small parts: specs, settings read at call time, error mapping, model-card YAML."""

from __future__ import annotations

import httpx2
import pytest
import yaml
from huggingface_hub import errors as hfe

from pnc_pack.errors import (
    HubAuthError,
    HubConnectionError,
    HubError,
    HubNotFoundError,
    HubOfflineError,
    UsageError,
)
from pnc_pack.hub import card, client


@pytest.mark.parametrize("spec, want", [
    ("org/name", ("org/name", "main")),
    ("hf://org/name", ("org/name", "main")),
    ("hf://org/name@v1.0", ("org/name", "v1.0")),
    ("org/name@refs/pr/3", ("org/name", "refs/pr/3")),
    ("hf://models/org/name@" + "a" * 40, ("org/name", "a" * 40)),
])
def test_parse_spec(spec, want):
    assert client.parse_spec(spec) == want


@pytest.mark.parametrize("spec", ["", "hf://", "org/na me", "org/a/b/c", "org/name@", "org/name@/etc/passwd",
                                  "org/name@a/../b", "org/name@x/", "org/name@a\nb", "../x"])
def test_parse_spec_refuses(spec):  # what the caller wrote is wrong: a usage error, exit 2 (issue 20, item 12)
    with pytest.raises(UsageError):
        client.parse_spec(spec)


def test_settings_are_read_at_call_time(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:1234/")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "home"))
    s = client.settings()
    assert s.endpoint == "http://127.0.0.1:1234" and s.cache_dir == tmp_path / "home" / "hub"
    assert s.token is None and s.token_arg is False and not s.offline and not s.progress
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "token").write_text("hf_from_file\n")  # what `hf auth login` writes
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "yes")
    s = client.settings()
    assert s.token == "hf_from_file" and s.cache_dir == tmp_path / "cache" and s.offline
    monkeypatch.setenv("HF_TOKEN", "hf_env")
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    s = client.settings()
    assert s.token == "hf_env" and not s.offline


def _http_error(cls, status, headers=None, token=None):
    req = httpx2.Request("GET", "http://127.0.0.1:9/api/models/org/x/revision/main",
                         headers={"authorization": f"Bearer {token}"} if token else {})
    resp = httpx2.Response(status, headers=headers or {}, request=req, json={"error": "nope"})
    return cls("boom", response=resp)


def _settings(tmp_path, token=None, offline=False):
    return client.HubSettings("http://127.0.0.1:9", token, tmp_path, offline, False)


def test_error_mapping(tmp_path):
    anon, tok = _settings(tmp_path), _settings(tmp_path, token="hf_x")
    m = client.map_error
    assert type(m(_http_error(hfe.RepositoryNotFoundError, 401), anon, "w", repo_id="org/x")) is HubNotFoundError
    assert type(m(_http_error(hfe.RepositoryNotFoundError, 401), tok, "w", repo_id="org/x")) is HubAuthError
    assert type(m(_http_error(hfe.RepositoryNotFoundError, 404), tok, "w", repo_id="org/x")) is HubNotFoundError
    assert type(m(_http_error(hfe.RevisionNotFoundError, 404), anon, "w", revision="v9")) is HubNotFoundError
    assert type(m(_http_error(hfe.HfHubHTTPError, 403), tok, "w")) is HubAuthError
    assert type(m(_http_error(hfe.HfHubHTTPError, 412), tok, "w")) is client.HubConflictError
    assert type(m(_http_error(hfe.HfHubHTTPError, 500), tok, "w")) is HubError
    assert type(m(httpx2.ReadTimeout("slow"), anon, "w")) is HubConnectionError
    assert type(m(httpx2.ConnectError("refused"), anon, "w")) is HubConnectionError
    assert type(m(hfe.OfflineModeIsEnabled("off"), anon, "w")) is HubOfflineError
    try:  # huggingface_hub imported with HF_HUB_OFFLINE=1 wraps its refusal in LocalEntryNotFoundError
        try:
            raise hfe.OfflineModeIsEnabled("off")
        except hfe.OfflineModeIsEnabled as inner:
            raise hfe.LocalEntryNotFoundError("not cached") from inner
    except hfe.LocalEntryNotFoundError as exc:
        assert type(m(exc, anon, "w")) is HubOfflineError
    try:
        try:
            raise httpx2.ConnectError("[Errno 111] Connection refused")
        except httpx2.ConnectError as inner:
            raise hfe.LocalEntryNotFoundError("An error happened") from inner
    except hfe.LocalEntryNotFoundError as exc:
        err = m(exc, anon, "fetching org/x")
        assert type(err) is HubConnectionError and "Connection refused" in str(err)
    for err in (m(_http_error(hfe.HfHubHTTPError, 401, {"X-Error-Message": "a\nb"}), tok, "w"),):
        assert "\n" not in str(err)


def test_card_yaml_is_deterministic_and_parses():
    odd = {"acc: top-1": 0.5, "name": 'quo"te\nnew', "nested": {"x": float("nan"), "y": True}, "long": "z" * 500}
    text = card.front_matter({"library_name": "pnc-pack", "tags": ["a", "b: c"],
                              "pnc_pack_metrics": card.scalar_metrics(odd)})
    assert text == card.front_matter({"library_name": "pnc-pack", "tags": ["a", "b: c"],
                                      "pnc_pack_metrics": card.scalar_metrics(odd)})
    meta = yaml.safe_load(text.strip().strip("-"))
    assert meta["tags"] == ["a", "b: c"] and meta["pnc_pack_metrics"]["name"] == 'quo"te\nnew'
    assert meta["pnc_pack_metrics"]["acc: top-1"] == 0.5 and meta["pnc_pack_metrics"]["nested.y"] is True
    assert "long" not in meta["pnc_pack_metrics"]
