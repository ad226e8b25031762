"""Deployment (issue 21): ONNX export checked with onnxruntime for every zoo and hf-* architecture; gates on apply with their
exit code, checked before anything is written; live modules (attach/remove) equal to a fresh apply of the composed
or reduced delta, refused updates leaving the model unchanged, and safe against concurrent forward calls."""

from __future__ import annotations

import json
import threading

import pytest
import torch

from pnc_pack.cli import main
from pnc_pack.errors import ExportError, GateError, ModelMismatchError, SignatureError
from pnc_pack.format import codec

pytestmark = pytest.mark.slow  # run first: see tests/conftest.py

pytest.importorskip("onnxruntime")

SLIM = {
    "lenet5": {"num_classes": 4, "in_channels": 1, "image_size": 28},
    "plaincnn": {"num_classes": 4, "width": 8},
    "resnet18": {"num_classes": 4, "width": 4},
    "mobilenetv2": {"num_classes": 4, "width_mult": 0.25},
    "shufflenetv2": {"num_classes": 4, "width_mult": 0.5},
}


def _slim_clone(arch):
    from pnc_pack.builder.api import fresh_delta
    from pnc_pack.clone.model import ClonedNetwork
    from pnc_pack.refs import FileDigest, ModelRef
    from pnc_pack.zoo.registry import build_model

    torch.manual_seed(0)
    t, s = (build_model(arch, SLIM[arch]).eval().requires_grad_(False) for _ in range(2))

    def ref(m):
        return ModelRef(arch, m.arch_args, {"model.safetensors": FileDigest("0" * 64, 1)}, path=f"/zoo/{arch}")

    d = fresh_delta(t, s, t.num_blocks // 2, ref(t), ref(s), clone_idx=(1, 2))
    return ClonedNetwork.from_delta(codec.loads(codec.dumps(d)), t, [s])


@pytest.mark.parametrize("arch", list(SLIM))
def test_onnx_export_answers_like_torch_for_every_zoo_arch(arch, tmp_path):
    import onnx
    import onnxruntime as ort

    from pnc_pack import export_onnx

    cloned = _slim_clone(arch)
    out = export_onnx(cloned, tmp_path / "m.onnx", n_random=16)
    side = json.loads((tmp_path / "m.onnx.json").read_text())
    assert side["opset"] == 17 and side["delta_sha256"] == codec.digest(cloned.delta).hex()
    assert [lab["from"] for lab in side["output"]["labels"]] == ["target"] * 4 + ["source:0"] * 2
    assert out.check.argmax_agreement == 1.0 and out.check.max_abs_diff <= out.check.allowed
    model = onnx.load(str(tmp_path / "m.onnx"))
    assert model.opset_import[0].version == 17 and "pnc_pack.labels" in {p.key for p in model.metadata_props}
    x = torch.rand(7, *cloned.input_shape)  # another batch size than traced or checked: the batch axis is dynamic
    got = ort.InferenceSession(str(tmp_path / "m.onnx")).run(None, {"input": x.numpy()})[0]
    with torch.no_grad():
        want = cloned(x).numpy()
    assert abs(got - want).max() <= out.check.allowed and (got.argmax(1) == want.argmax(1)).all()


def test_onnx_export_that_disagrees_is_refused_and_writes_nothing(tmp_path, monkeypatch):
    import pnc_pack.clone.onnx_export as ox

    cloned = _slim_clone("plaincnn")
    real = torch.onnx.export

    def export_then_change(model, *a, **kw):  # the graph no longer matches the torch model it is compared with
        real(model, *a, **kw)
        with torch.no_grad():
            model.heads[0].bias += 5.0

    monkeypatch.setattr(ox.torch.onnx, "export", export_then_change)
    with pytest.raises(ExportError, match="differs from torch"):
        ox.export_onnx(cloned, tmp_path / "m.onnx", n_random=8)
    assert list(tmp_path.iterdir()) == []


HF_ARCH = {"resnet": "hf-resnet", "regnet": "hf-regnet", "convnext": "hf-convnext", "convnextv2": "hf-convnextv2",
           "mobilenet_v2": "hf-mobilenet-v2", "efficientnet": "hf-efficientnet"}


def test_every_hf_arch_is_exported():
    from pnc_pack.zoo.registry import _builtin_names
    from tests.hf_models import TINY

    assert sorted(HF_ARCH) == sorted(TINY)
    assert sorted(HF_ARCH.values()) == sorted(n for n in _builtin_names() if n.startswith("hf-"))


@pytest.fixture(scope="module")
def hf_folders(tmp_path_factory):
    """One tiny random transformers folder per hf-* architecture (transformers imported here, not at collection)."""
    from tests.hf_models import write_hf_folder

    root = tmp_path_factory.mktemp("hf")
    return {mt: write_hf_folder(root / mt, mt, num_labels=4, seed=1) for mt in HF_ARCH}


@pytest.mark.parametrize("mt", sorted(HF_ARCH))
def test_onnx_export_answers_like_torch_for_every_hf_arch(mt, hf_folders, tmp_path):
    """Target and source of each transformers family (ConvNeXt's channels-last masks, ConvNeXtV2's GRN, the
    in-model preprocessing): the graph answers like torch at another batch size, with the masks in it."""
    import dataclasses

    import onnxruntime as ort

    from pnc_pack import export_onnx
    from pnc_pack.builder.api import fresh_delta
    from pnc_pack.clone.model import ClonedNetwork
    from pnc_pack.zoo.pretrained import load_pretrained, local_ref

    folder = hf_folders[mt]
    (t, _), (s, _) = load_pretrained(folder), load_pretrained(folder)
    assert t.arch == s.arch == HF_ARCH[mt]
    d = fresh_delta(t, s, 2, local_ref(folder), local_ref(folder), clone_idx=(1, 2))
    cloned = ClonedNetwork.from_delta(codec.loads(codec.dumps(d)), t, [s])
    out = export_onnx(cloned, tmp_path / "m.onnx", n_random=4)
    assert out.check.argmax_agreement == 1.0 and out.check.max_abs_diff <= out.check.allowed
    side = json.loads((tmp_path / "m.onnx.json").read_text())
    assert "(pixel - mean) / std" in side["input"]["in_graph"] and side["input"]["shape"][1:] == list(t.input_shape)
    x = torch.rand(3, *cloned.input_shape)
    got = ort.InferenceSession(str(tmp_path / "m.onnx")).run(None, {"input": x.numpy()})[0]
    with torch.no_grad():
        want = cloned(x).numpy()
    assert abs(got - want).max() <= out.check.allowed and (got.argmax(1) == want.argmax(1)).all()
    live = cloned._live  # the masks are constants of the graph: without them the new logits are another function
    assert live.branches[0].masks
    ones = tuple(dataclasses.replace(b, masks={k: torch.ones_like(v) for k, v in b.masks.items()})
                 for b in live.branches)
    cloned.__dict__["_live"] = dataclasses.replace(live, branches=ones)
    with torch.no_grad():
        unmasked = cloned(x).numpy()
    assert abs(got[:, 4:] - unmasked[:, 4:]).max() > 100 * out.check.allowed


def _run(capsys, *args):
    rc = main([str(a) for a in args])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_gates_pass_a_good_clone_and_stop_a_damaged_one_before_writing(built, tmp_path, capsys):
    from pnc_pack.clone.damage import perturb

    good, bad = tmp_path / "good.pncd", tmp_path / "bad.pncd"
    codec.save(built, good)
    codec.save(perturb(built, scale=4.0, seed=0), bad)
    gates = ["--eval-data", "digits", "--min-ori", 60, "--min-tar", 60, "--max-ori-drop", 25]
    rc, out, err = _run(capsys, "apply", good, *gates, "--export-onnx", tmp_path / "ok.onnx", "--json")
    assert rc == 0, err
    rep = json.loads(out)
    assert rep["gates"]["passed"] and {g["gate"] for g in rep["gates"]["gates"]} == {"min_ori", "min_tar",
                                                                                       "max_ori_drop"}
    m = rep["gates"]["measured"]
    assert m["ori_drop"] == pytest.approx(m["target_ori"] - m["ori"], abs=1e-3) and m["target_ori"] >= m["ori"] - 5
    assert rep["onnx"]["argmax_agreement"] == 1.0 and (tmp_path / "ok.onnx.json").is_file()

    rc, out, err = _run(capsys, "apply", bad, *gates, "--export-onnx", tmp_path / "no.onnx", "--export",
                        tmp_path / "offline")
    assert rc == GateError.exit_code == 8
    line = err.strip()
    assert "\n" not in line and "gate --min-" in line and "%" in line, line
    assert not (tmp_path / "no.onnx").exists() and not (tmp_path / "offline").exists()
    rc, out, err = _run(capsys, "apply", bad, *gates, "--json")
    assert rc == 8 and json.loads(out)["gates"]["passed"] is False
    assert all("measured" in g for g in json.loads(out)["gates"]["gates"])
    rc, out, err = _run(capsys, "apply", good, "--min-ori", 50)
    assert rc == 2 and "--eval-data" in err


@pytest.fixture(scope="module")
def second(zoo, source2, tmp_path_factory):
    """An untrained module cloning 8, 9 of ``source2`` into the ``zoo`` target, as a file; and one whose target is
    the ``zoo`` source (another target)."""
    from pnc_pack.builder.api import fresh_delta
    from pnc_pack.zoo.pretrained import load_pretrained, local_ref

    d = tmp_path_factory.mktemp("second")
    (t, _), (s, _), (s0, _) = (load_pretrained(f) for f in (zoo["target"], source2, zoo["source"]))
    b = fresh_delta(t, s, 1, local_ref(zoo["target"]), local_ref(source2), clone_idx=(1, 2), seed=3)
    other = fresh_delta(s0, s, 1, local_ref(zoo["source"]), local_ref(source2), clone_idx=(1, 2), seed=3)
    codec.save(b, d / "b.pncd")
    codec.save(other, d / "other.pncd")
    return d / "b.pncd", d / "other.pncd"


def test_attach_and_remove_equal_a_fresh_apply_and_refusals_change_nothing(built, second, tmp_path):
    from pnc_pack.api.model import apply
    from pnc_pack.format.compose import compose, remove
    from pnc_pack.format.signing import private_key_from_seed, public_key_bytes, sign

    key = private_key_from_seed(bytes(range(32)))
    a = tmp_path / "a.pncd"
    codec.save(sign(built, key), a)
    x = torch.rand(40, 1, 28, 28)
    cloned = apply(a, trusted_keys=[public_key_bytes(key)], require_signature=True)
    with torch.no_grad():
        before = cloned(x)
    b_bytes = second[0].read_bytes()
    tampered = bytearray(b_bytes)
    tampered[len(tampered) // 2] ^= 0x01
    for bad, err in ((bytes(tampered), Exception), (b_bytes, SignatureError),
                     (codec.dumps(sign(codec.load(second[1]), key)), ModelMismatchError)):
        with pytest.raises(err):
            cloned.attach(bad)
        with torch.no_grad():
            assert torch.equal(cloned(x), before) and len(cloned.delta.modules) == 1
    signed_b = sign(codec.loads(b_bytes), key)
    cloned.attach(codec.dumps(signed_b))
    composed = compose([built, codec.loads(b_bytes)])
    fresh = apply(composed)
    with torch.no_grad():
        assert torch.equal(cloned(x), fresh(x))
    assert cloned.output_labels == fresh.output_labels == [0, 1, 2, 3, 4, 5, 6, 8, 9]
    cloned.remove(classes=[5, 6])
    fresh = apply(remove(composed, [0]))
    with torch.no_grad():
        assert torch.equal(cloned(x), fresh(x))
    assert cloned.output_labels == [0, 1, 2, 3, 4, 8, 9]
    cloned.remove([0])
    with torch.no_grad():
        assert torch.equal(cloned(x), cloned.detach()(x))


def test_forward_sees_the_modules_before_or_after_never_half(built, second):
    from pnc_pack.api.model import apply

    cloned = apply(built)
    x = torch.rand(16, 1, 28, 28)
    with torch.no_grad():
        one = cloned(x)
        cloned.attach(second[0])
        two = cloned(x)
        cloned.remove([1])
    assert torch.equal(cloned(x).detach(), one)
    stop, bad, seen = threading.Event(), [], {9: 0, 7: 0}

    def worker():
        while not stop.is_set():
            with torch.no_grad():
                y = cloned(x)
            want = {7: one, 9: two}.get(y.shape[1])
            if want is None or not torch.equal(y, want):
                bad.append(tuple(y.shape))
            else:
                seen[y.shape[1]] += 1

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        for _ in range(15):
            cloned.attach(second[0])
            cloned.remove([1])
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert bad == [] and seen[7] > 0
