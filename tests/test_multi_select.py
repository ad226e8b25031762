"""Choosing a source (SUPP Eqs. 6-8): ZEST column alignment, the similarity score, select_source, build_selected."""

from __future__ import annotations

import pytest
import torch

from pnc_pack.builder import BuildConfig
from pnc_pack.builder.select import align, build_selected, choose, select_source, similarity
from pnc_pack.errors import UsageError
from tests.multi_fixtures import TINY


def test_alignment_recovers_a_column_permutation():
    g = torch.Generator().manual_seed(0)
    theta = torch.randn(6, 17, 4, generator=g)  # 6 anchors, 16 patches + intercept, 4 outputs
    perm = [2, 0, 3, 1]
    score, pairs = similarity(theta[..., perm], theta)
    assert score == pytest.approx(1.0) and pairs == [(i, p) for i, p in enumerate(perm)]
    # scale does not matter; a narrower model matches its columns into the wider one
    score, pairs = similarity(3.0 * theta[..., [3, 1]], theta)
    assert score == pytest.approx(1.0) and pairs == [(0, 3), (1, 1)]
    # unrelated weights score near 0
    assert abs(similarity(torch.randn(6, 17, 4, generator=g), theta)[0]) < 0.3


def test_greedy_matching_takes_the_globally_closest_pair_first():
    a = torch.tensor([[1.0, 1.0], [0.0, 0.2]])  # columns (1, 0) and (1, 0.2)
    b = torch.tensor([[1.0, 0.0], [0.21, 1.0]])  # columns (1, 0.21) and (0, 1)
    # (a1, b0) is the closest pair overall, so a0 gets what is left (b1), though b0 is a0's nearest too
    assert align(a, b) == [(0, 1), (1, 0)]


def test_the_intercept_is_left_out_unless_asked():
    g = torch.Generator().manual_seed(1)
    theta = torch.randn(5, 17, 3, generator=g)
    other = theta.clone()
    other[:, -1] += 100.0  # only the logit levels differ
    assert similarity(other, theta)[0] == pytest.approx(1.0)
    assert similarity(other, theta, intercept=True)[0] < 0.5


def test_rules():
    scores, acc = [0.3, 0.2, 0.5], [0.99, 0.98, 0.40]
    assert choose(scores, acc, "similarity") == 2  # the paper's rule: the most similar, however poor a source
    assert choose(scores, acc, "accuracy") == 0
    assert choose(scores, acc, "competent") == 0  # the most similar of those within 2 points of the best accuracy
    assert choose([0.1, 0.3], [0.99, 0.98], "competent") == 1
    with pytest.raises(UsageError, match="unknown selection rule"):
        choose(scores, acc, "vibes")


def test_select_source_scores_every_candidate(zoo, digits, source2):
    cfg = BuildConfig(data_fraction=0.5)  # 144 samples of 8 and 9: capped at 40 anchors
    sel = select_source(zoo["target"], [zoo["source"], source2], digits, [8, 9], config=cfg, masks_per_anchor=10,
                        max_anchors=40)
    assert len(sel.scores) == 2 and all(-1 <= s <= 1 for s in sel.scores)
    assert sel.best == max(range(2), key=lambda i: sel.scores[i])
    assert sel.anchors == 40
    d = sel.to_dict()
    assert d["chosen"] == str([zoo["source"], source2][sel.best])
    # the target has 5 outputs, the sources 5 and 3: as many matched columns as the narrower model has
    assert [len(x["matched"]) for x in d["details"]] == [5, 3]
    assert all(0 <= x["dt_accuracy"] <= 1 for x in d["details"]) and d["rule"] == "similarity"
    again = select_source(zoo["target"], [zoo["source"], source2], digits, [8, 9], config=cfg, masks_per_anchor=10,
                          max_anchors=40)
    assert again.scores == sel.scores  # deterministic
    with pytest.raises(UsageError, match="not among its classes"):
        select_source(zoo["target"], [zoo["source"], source2], digits, [5], masks_per_anchor=4, max_anchors=8)
    with pytest.raises(UsageError, match="already target classes"):
        select_source(zoo["target"], [zoo["source"]], digits, [1], masks_per_anchor=4, max_anchors=8)


def test_build_selected_builds_from_the_chosen_source_only(zoo, digits, source2):
    delta, sel = build_selected(zoo["target"], [zoo["source"], source2], digits, [8, 9], seed=0, max_anchors=40,
                                select_masks=10, neg_weight=0, **TINY)
    assert delta.modules[0].source.path == sel.candidates[sel.best]
    assert delta.metrics["selection"]["scores"] == [round(s, 6) for s in sel.scores]
