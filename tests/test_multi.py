"""Several sources in one clone (SUPP Eq. 5): compose, add, remove; modules independent; the target back bit for bit.

Tiny LeNet-5 models on sklearn digits: the conftest target (0-4) and source (5-9), plus a second source on 7-9.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from pnc_pack.api.build import add_source, build_multi
from pnc_pack.api.model import apply
from pnc_pack.builder import build_clone
from pnc_pack.clone.convert import state_digest
from pnc_pack.clone.evaluate import evaluate_delta_model
from pnc_pack.data import fit_to_shape
from pnc_pack.errors import UsageError
from pnc_pack.format import codec
from pnc_pack.format.compose import compose, find_modules, remove, split
from pnc_pack.refs import FileDigest
from tests.multi_fixtures import TINY


@pytest.fixture(scope="module")
def parts(zoo, digits, source2):
    a = build_clone(zoo["target"], zoo["source"], digits, [5, 6], seed=0, **TINY)
    b = build_clone(zoo["target"], source2, digits, [8, 9], seed=0, **TINY)
    return a, b


def _logits(delta, digits):
    cloned = apply(codec.loads(codec.dumps(delta)))  # through the file format, as a receiver
    X = fit_to_shape(digits.test[0][:200], cloned.input_shape)
    with torch.no_grad():
        return cloned, cloned(X)


def test_compose_renumbers_modules_heads_and_labels(parts):
    a, b = parts
    c = compose([a, b])
    assert c.modules == (a.modules[0], b.modules[0])
    assert [(lab.model, lab.name) for lab in c.labels] == [("target", str(i)) for i in range(5)] + [
        ("source:0", "5"), ("source:0", "6"), ("source:1", "8"), ("source:1", "9")]
    assert c.classifier_args["num_outputs"] == 9 and c.classifier_args["num_old"] == 5
    assert c.classifier["new.1.weight"] == b.classifier["new.0.weight"]
    assert c.classifier["new.0.bias"] == a.classifier["new.0.bias"]
    assert c.provenance["modules"] == [a.provenance, b.provenance]
    assert c.metrics["modules"] == [a.metrics, b.metrics]
    assert codec.loads(codec.dumps(c)) == c
    assert compose([a]) == a


def test_modules_are_independent_and_removing_one_restores_the_delta_before_it(parts, digits):
    a, b = parts
    c = compose([a, b])
    _, both = _logits(c, digits)
    _, alone = _logits(a, digits)
    # module 0's logits (and the target's) do not depend on module 1 at all
    assert torch.equal(both[:, :7], alone)
    removed = remove(c, [1])
    assert codec.dumps(removed) == codec.dumps(a)  # the delta before B was added, byte for byte
    _, again = _logits(removed, digits)
    assert torch.equal(again, alone)  # measured tolerance: 0 (identical logits, hence identical predictions)
    assert torch.equal(again.argmax(1), alone.argmax(1))
    assert codec.dumps(remove(c, [0])) == codec.dumps(replace(b))


def test_removing_every_module_returns_the_target_bit_for_bit(parts, zoo, digits):
    from pnc_pack.zoo.pretrained import load_pretrained

    a, b = parts
    none = codec.loads(codec.dumps(remove(compose([a, b]), [0, 1])))
    assert none.modules == () and none.classifier == {} and [lab.model for lab in none.labels] == ["target"] * 5
    cloned, out = _logits(none, digits)
    target, _ = load_pretrained(zoo["target"])
    X = fit_to_shape(digits.test[0][:200], target.input_shape)
    with torch.no_grad():
        assert torch.equal(out, target(X))
    assert state_digest(cloned.detach()) == state_digest(target)
    ev = evaluate_delta_model(cloned, digits)
    assert ev["k"] == 0 and ev["avg"] == ev["ori"]


def test_add_builds_only_the_new_module(parts, zoo, digits, source2):
    a, b = parts
    added = add_source(a, source2, [8, 9], digits, seed=0, **TINY)
    assert codec.dumps(added) == codec.dumps(compose([a, b]))
    assert added.modules[0] is a.modules[0]  # the base's module is carried over, not rebuilt
    with pytest.raises(UsageError, match="class 6"):
        add_source(a, source2, [6], digits, **TINY)  # refused before any training


def test_build_multi_reports_each_functionality(parts, zoo, digits, source2):
    a, b = parts
    plain = build_multi(zoo["target"], [(zoo["source"], [5, 6]), (source2, [8, 9])], digits, seed=0, **TINY)
    assert codec.dumps(plain) == codec.dumps(compose([a, b]))  # one deterministic build_clone per source
    d = build_multi(zoo["target"], [(zoo["source"], [5, 6]), (source2, [8, 9])], digits, seed=0, eval_data=digits,
                    **TINY)
    ev = d.metrics["eval"]
    assert [f["name"] for f in ev["functionalities"]] == ["target", "module 0", "module 1"]
    assert [f["classes"] for f in ev["functionalities"]] == [["0", "1", "2", "3", "4"], ["5", "6"], ["8", "9"]]
    assert ev["functionalities"][0]["acc"] == ev["ori"]
    for name, row in ev["routing"].items():
        assert sum(row.values()) == pytest.approx(1.0, abs=1e-5)
        assert row[name] >= next(f["acc"] for f in ev["functionalities"] if f["name"] == name)
    assert all("eval" in m for m in d.metrics["modules"])  # each module alone with the target, as built
    with pytest.raises(UsageError, match="class 6"):
        build_multi(zoo["target"], [(zoo["source"], [5, 6]), (zoo["source"], [6])], digits, **TINY)


def test_find_and_refuse(parts, zoo, source2):
    a, b = parts
    c = compose([a, b])
    assert find_modules(c, classes=[9, 8]) == [1]
    assert find_modules(c, source=str(source2)) == [1]
    assert find_modules(c, source=str(zoo["source"])) == [0]
    assert find_modules(c, source=a.modules[0].source.files["model.safetensors"].sha256[:12]) == [0]
    assert find_modules(c, classes=[5]) == []
    with pytest.raises(UsageError, match="no module 2"):
        remove(c, [2])
    with pytest.raises(UsageError, match="class '5'"):
        compose([a, a])
    other = replace(b.target, files={**b.target.files, "model.safetensors": FileDigest("1" * 64, 1)})
    with pytest.raises(UsageError, match="same target"):
        compose([a, replace(b, target=other)])
    old, ps = split(c)
    assert len(old) == 5 and [p.dataset_classes for p in ps] == [[5, 6], [8, 9]]
