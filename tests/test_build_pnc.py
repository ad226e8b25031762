"""The PNC builder on tiny real models: it clones, it is exact about what it touches, it is deterministic."""

from __future__ import annotations

import hashlib

import pytest
import torch

from pnc_pack.builder import build_clone
from pnc_pack.builder.config import BuildConfig
from pnc_pack.errors import UsageError
from pnc_pack.format import codec
from tests.conftest import CLONE, FAST, PLUMBING

pytestmark = pytest.mark.slow  # run first: see tests/conftest.py


def _files(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_new_classes_recognised_well_above_chance(built):
    ev = built.metrics["eval"]
    # 7 outputs: chance is 1/7. The cloned classes must be recognised and the old ones kept.
    assert ev["tar"] > 0.6, ev
    assert ev["ori"] > 0.6, ev
    assert ev["avg"] > 0.6, ev
    assert [lab.name for lab in built.labels] == ["0", "1", "2", "3", "4", "5", "6"]


def test_every_position_is_searched_and_the_best_kept(built):
    losses = built.metrics["loss_per_R"]
    assert sorted(losses) == ["0", "1", "2"]  # LeNet-5: L = 3, R = 2, 1, 0
    best = min(losses, key=lambda r: losses[r]["total"])
    assert built.metrics["R"] == int(best) == built.modules[0].target_position


def test_masks_are_binary_and_cover_the_cloned_blocks(built):
    m = built.modules[0]
    assert m.masks, "localisation must produce masks"
    for mask in m.masks:
        assert set(mask.to_bools()) <= {True, False}
        assert 0 < mask.kept <= mask.filters
        assert int(mask.layer.split(".")[1]) >= m.source_position


def test_pretrained_files_are_untouched(zoo, digits):
    before = {k: _files(v) for k, v in zoo.items()}
    build_clone(zoo["target"], zoo["source"], digits, [7], seed=1, **PLUMBING)
    assert {k: _files(v) for k, v in zoo.items()} == before


def test_same_inputs_and_seed_give_the_same_bytes(zoo, digits):
    """Two whole builds (every position, negatives, calibration, evaluation) on the short PLUMBING schedule; the
    bytes of the FAST build (``built``) are pinned to a digest in test_devices.py."""
    one = build_clone(zoo["target"], zoo["source"], digits, CLONE, seed=0, eval_data=digits, **PLUMBING)
    again = build_clone(zoo["target"], zoo["source"], digits, CLONE, seed=0, eval_data=digits, **PLUMBING)
    assert codec.dumps(again) == codec.dumps(one)


def test_references_are_pinned(built, zoo):
    assert built.target.path == str(zoo["target"])
    for ref in built.refs:
        assert set(ref.files) == {"config.json", "model.safetensors"}
        ref.check_folder(ref.path)


def test_bad_requests_are_usage_errors(zoo, digits):
    with pytest.raises(UsageError, match="not classes of the source"):
        build_clone(zoo["target"], zoo["source"], digits, [2], **FAST)
    with pytest.raises(UsageError, match="unknown build setting"):
        build_clone(zoo["target"], zoo["source"], digits, [5], no_such_setting=1)


def test_routing_is_calibrated_on_held_out_anchors(built, zoo, digits):
    """The new-class biases are shifted so that the configured share of held-out D_t images routes to a cloned
    class; the shift is the only difference from the same build without calibration."""
    from pnc_pack.clone.convert import from_raw

    cal = built.metrics["calibration"]
    wanted = BuildConfig().recall(len(CLONE))
    assert abs(cal["held_out_recall_after"] - wanted) <= 0.06  # a quantile over a few dozen held-out anchors
    # the same build with and without calibration, on the short PLUMBING schedule (what differs is the point)
    cal_d, raw = (build_clone(zoo["target"], zoo["source"], digits, CLONE, seed=0, **PLUMBING, **off)
                  for off in ({}, dict(route_recall=None, route_recall_multi=None)))
    shift = cal_d.metrics["calibration"]["bias_shift"]
    assert "calibration" not in raw.metrics and shift != 0
    b_cal, b_raw = (from_raw(d.classifier["new.0.bias"]) for d in (cal_d, raw))
    assert torch.allclose(b_cal, b_raw - shift, atol=1e-5)
    assert raw.classifier["new.0.weight"] == cal_d.classifier["new.0.weight"]
    with pytest.raises(UsageError, match="route_recall"):
        build_clone(zoo["target"], zoo["source"], digits, CLONE, route_recall=1.5, **FAST)
    with pytest.raises(UsageError, match="route_recall_multi"):
        build_clone(zoo["target"], zoo["source"], digits, CLONE, route_recall_multi=0, **FAST)


def test_inversion_negatives_are_confident_target_images_and_leave_the_target_alone(zoo, digits):
    from pnc_pack.builder.negatives import make_negatives
    from pnc_pack.clone.convert import state_digest
    from pnc_pack.data import fit_to_shape, select_classes
    from pnc_pack.zoo.pretrained import load_pretrained

    target, _ = load_pretrained(zoo["target"])
    source, _ = load_pretrained(zoo["source"])
    X, _ = select_classes(*digits.train, [5])
    X = fit_to_shape(X[:40], target.input_shape)
    before = state_digest(target)
    x, y = make_negatives(X, target, source, [0], target_conf=0.9, source_max=0.5, kind="inversion",
                          gen=torch.Generator().manual_seed(0), limit=1000, inversion_steps=20, inversion_copies=2)
    assert state_digest(target) == before and all(p.grad is None for p in target.parameters())
    assert len(x) > 0 and x.min() >= X.min() and x.max() <= X.max()
    with torch.no_grad():
        conf, cls = torch.softmax(target(x), 1).max(1)
    assert (conf >= 0.9).all() and torch.equal(cls, y)
    d = build_clone(zoo["target"], zoo["source"], digits, CLONE, seed=0, negatives="inversion", **PLUMBING)
    assert d.metrics["negatives"] > 0


def test_typical_negatives_are_the_most_typical_passing_candidates_per_target_class(zoo, digits):
    from pnc_pack.builder.negatives import _passing, make_negatives, typical_pool
    from pnc_pack.data import fit_to_shape, select_classes
    from pnc_pack.zoo.pretrained import load_pretrained

    target, _ = load_pretrained(zoo["target"])
    source, _ = load_pretrained(zoo["source"])
    X, _ = select_classes(*digits.train, [5])
    X = fit_to_shape(X[:40], target.input_shape)
    kw = dict(target_conf=0.9, source_max=0.5, kind="typical", limit=50)
    x, y = make_negatives(X, target, source, [0], gen=torch.Generator().manual_seed(0), **kw)
    again = make_negatives(X, target, source, [0], gen=torch.Generator().manual_seed(0), **kw)
    assert torch.equal(x, again[0]) and torch.equal(y, again[1])
    n_old = target.num_classes
    assert 0 < len(x) <= 50 and torch.bincount(y, minlength=n_old).max() <= 50 // n_old  # balanced per class
    with torch.no_grad():
        ok, cls, energy = _passing(x, target, source, [0], 0.9, 0.5)
        assert ok.all() and torch.equal(cls, y)
        # every kept image is at least as typical (target logsumexp) as any passing candidate of its class left out
        pool = torch.cat(list(typical_pool(X, torch.Generator().manual_seed(0))))
        pok, pcls, penergy = _passing(pool, target, source, [0], 0.9, 0.5)
    for c in y.unique().tolist():
        assert energy[y == c].min() >= penergy[pok & (pcls == c)].sort(descending=True).values[(y == c).sum() - 1] - 1e-5


def test_typical_negatives_may_be_none(zoo, digits):
    from pnc_pack.builder.negatives import make_negatives
    from pnc_pack.data import fit_to_shape, select_classes
    from pnc_pack.zoo.pretrained import load_pretrained

    target, _ = load_pretrained(zoo["target"])
    source, _ = load_pretrained(zoo["source"])
    X, _ = select_classes(*digits.train, [5])
    X = fit_to_shape(X[:8], target.input_shape)
    for x in (X, X[:0]):  # nothing passes a confidence above 1; no images at all
        nx, ny = make_negatives(x, target, source, [0], target_conf=1.01, source_max=0.5, kind="typical",
                                gen=torch.Generator().manual_seed(0), limit=10)
        assert nx.shape == (0, *X.shape[1:]) and ny.shape == (0,)


def test_no_negatives_are_made_when_their_weight_is_zero(zoo, digits, monkeypatch):
    import pnc_pack.builder.api as api

    def refuse(*a, **k):
        raise AssertionError("negatives made although neg_weight is 0")

    monkeypatch.setattr(api, "make_negatives", refuse)
    d = build_clone(zoo["target"], zoo["source"], digits, CLONE, seed=0, neg_weight=0.0, **PLUMBING)
    assert d.metrics["negatives"] == 0 and d.metrics["negatives_held_out"] == 0


def test_novelty_lets_far_candidates_past_the_source_check(zoo, digits):
    """Candidates the source calls a cloned class are still negatives when they lie far from every D_t anchor in the
    source's feature space; real cloned-class images almost never do, real target-class images mostly do."""
    from pnc_pack.builder.negatives import Novelty, _passing, _source_allows, make_negatives
    from pnc_pack.data import fit_to_shape, select_classes
    from pnc_pack.zoo.pretrained import load_pretrained

    target, _ = load_pretrained(zoo["target"])
    source, _ = load_pretrained(zoo["source"])
    fit = lambda x: fit_to_shape(x, target.input_shape)  # noqa: E731
    X = fit(select_classes(*digits.train, [5])[0])
    anchors, held_out = X[:80], X[80:]
    new_test = fit(select_classes(*digits.test, [5])[0])
    old_test = fit(select_classes(*digits.test, [0, 1, 2, 3, 4])[0])
    novelty = Novelty(source.features, anchors, held_out, 0.9)
    assert novelty.far(held_out).float().mean() <= 0.1 + 1 / len(held_out)
    assert novelty.far(new_test).float().mean() <= 0.15
    assert novelty.far(old_test).float().mean() >= 0.5
    kw = dict(target_conf=0.9, source_max=0.5, kind="typical", limit=200)
    x, y = make_negatives(anchors, target, source, [0], gen=torch.Generator().manual_seed(0), novelty=novelty, **kw)
    again = make_negatives(anchors, target, source, [0], gen=torch.Generator().manual_seed(0), novelty=novelty, **kw)
    assert torch.equal(x, again[0]) and torch.equal(y, again[1])
    with torch.no_grad():
        ok, cls, _ = _passing(x, target, source, [0], 0.9, 0.5, novelty)
        by_source = _source_allows(x, source, [0], 0.5)
    assert ok.all() and torch.equal(cls, y)
    assert (~by_source).any() and novelty.far(x[~by_source]).all()  # the source alone would have refused these
    with pytest.raises(UsageError, match="neg_novelty"):
        build_clone(zoo["target"], zoo["source"], digits, CLONE, neg_novelty=0.0, **FAST)


def test_negatives_get_the_same_patch_masks_as_the_clone_classes_samples(zoo, digits):
    """The negatives come clean and under random patch masks, drawn and filled as D_t's perturbed samples are, so
    "is it occluded" cannot tell the cloned classes from the target's; labels follow their images."""
    from pnc_pack.builder.api import prepare
    from pnc_pack.builder.negatives import patch_masked
    from pnc_pack.builder.surrogate import perturb
    from pnc_pack.zoo.pretrained import load_pretrained

    x = torch.rand(6, 1, 8, 8)
    y = torch.arange(6)
    xm, ym = patch_masked(x, y, copies=2, grid=4, rate=0.5, gen=torch.Generator().manual_seed(0))
    assert xm.shape == (18, 1, 8, 8) and torch.equal(ym, y.repeat(3))
    assert torch.equal(xm[:6], x)  # the clean copy first
    means = perturb(x, torch.zeros(6, 16), 4)  # every patch at its own mean colour
    for m in (1, 2):
        copy = xm[6 * m:6 * (m + 1)]
        assert not torch.equal(copy, x)
        assert torch.all(torch.isclose(copy, x) | torch.isclose(copy, means))  # a patch is kept or hidden, nothing else
    assert patch_masked(x, y, copies=0, grid=4, rate=0.5, gen=torch.Generator())[0] is x

    (source, s_cfg), (target, t_cfg) = load_pretrained(zoo["source"]), load_pretrained(zoo["target"])

    def negatives(copies):
        cfg = BuildConfig.with_overrides(**PLUMBING, neg_masks=copies)
        p, info = prepare(source, target, s_cfg, t_cfg, digits, CLONE, cfg, seed=0)
        return p.neg_x, p.neg_y, p.neg_x_ho

    clean, masked = negatives(0), negatives(2)
    n = len(clean[0])
    assert len(masked[0]) == 3 * n > 0 and torch.equal(masked[0][:n], clean[0])
    assert torch.equal(masked[1], clean[1].repeat(3))
    assert len(masked[2]) % 3 == 0 and len(masked[2]) > 0  # the held-out negatives too (drawn after these masks)
    with pytest.raises(UsageError, match="neg_masks"):
        build_clone(zoo["target"], zoo["source"], digits, CLONE, neg_masks=-1, **FAST)
