"""The paper's conditional similarity Sim(M_a|D, M_b|D) (issue 19 item 5): a model is maximally similar to itself,
the clone is the target on the target's data, and ``pnc-pack eval --similarity --json`` reports it."""

from __future__ import annotations

import json

import pytest

SMALL = dict(anchors=8, masks_per_anchor=20)


@pytest.fixture(scope="module")
def cloned(built):
    from pnc_pack.api.model import apply

    return apply(built)


def test_a_model_is_maximally_similar_to_itself(cloned, digits):
    from pnc_pack.builder.similarity import cross_similarity, pair_similarity

    X, y = digits.test
    assert pair_similarity(cloned.target, cloned.target, X[y < 5], **SMALL) == pytest.approx(1.0, abs=1e-9)
    assert pair_similarity(cloned, cloned, X[y >= 5], **SMALL) == pytest.approx(1.0, abs=1e-9)
    other = pair_similarity(cloned.target, cloned.sources[0], X[y < 5], **SMALL)
    assert other < 0.9  # two different models are not
    assert cross_similarity(cloned.sources[0], X[y == 5], X[y == 5], **SMALL) == pytest.approx(1.0, abs=1e-9)


def test_clone_is_the_target_on_the_target_data(cloned, digits):
    import pnc_pack

    r = pnc_pack.conditional_similarity(cloned, digits, **SMALL)
    (tgt, mod) = r["functionalities"]
    assert tgt["name"] == "target" and tgt["classes"] == ["0", "1", "2", "3", "4"] and mod["classes"] == ["5", "6"]
    assert tgt["target"] > 0.95 and tgt["target"] > tgt["sources"][0] + 0.3
    assert len(mod["sources"]) == 1 and -1 <= mod["sources"][0] <= 1 and tgt["anchors"] == 8


def test_eval_similarity_json(built, tmp_path, capsys):
    from pnc_pack.cli import main
    from pnc_pack.format import codec

    path = tmp_path / "c.pnc"
    codec.save(built, path)
    assert main(["eval", str(path), "--data", "digits", "--similarity", "--similarity-anchors", "4", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    sim = out["similarity"]
    assert [f["name"] for f in sim["functionalities"]] == ["target", "module 0"] and sim["anchors"] == 4
    assert sim["functionalities"][0]["target"] > 0.9 and "ori" in out
    assert main(["eval", str(path), "--data", "digits", "--similarity-anchors", "0"]) == 2
