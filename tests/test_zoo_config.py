"""config.json: deterministic bytes, and a typed FormatError naming the field for every bad content."""

import json

import pytest

from pnc_pack.errors import FormatError, ModelNotFoundError
from pnc_pack.zoo.config import MAX_CONFIG_BYTES, ModelConfig, read_config


def good() -> dict:
    return {
        "format": "pnc-pack-model", "format_version": 1, "arch": "lenet5",
        "arch_args": {"num_classes": 2, "in_channels": 1, "image_size": 28},
        "classes": [{"label": 3, "name": "3"}, {"label": 7, "name": "seven"}],
        "input_shape": [1, 28, 28],
        "training": {"data": "mnist5k", "classes": [3, 7], "epochs": 2, "seed": 0, "test_accuracy": 0.99,
                     "versions": {"torch": "2.13.0"}},
    }


def test_round_trip_and_deterministic_bytes(tmp_path):
    cfg = ModelConfig.from_dict(good())
    data = cfg.to_json()
    assert data.endswith(b"\n") and json.loads(data) == good()
    # key order of the input does not matter
    shuffled = dict(reversed(list(good().items())))
    assert ModelConfig.from_dict(shuffled).to_json() == data
    again = ModelConfig.from_json(data)
    assert again == cfg and again.to_json() == data
    assert cfg.labels == [3, 7] and cfg.class_names == ["3", "seven"] and cfg.num_classes == 2
    (tmp_path / "config.json").write_bytes(data)
    assert read_config(tmp_path) == cfg


def mutate(fn):
    d = good()
    fn(d)
    return json.dumps(d).encode()


@pytest.mark.parametrize("data,match", [
    (mutate(lambda d: d.update(extra=1)), "unknown field"),
    (mutate(lambda d: d.pop("arch")), "'arch'"),
    (mutate(lambda d: d.update(format="other")), "format"),
    (mutate(lambda d: d.update(format_version=2)), "newer"),
    (mutate(lambda d: d.update(format_version="1")), "format_version"),
    (mutate(lambda d: d.update(arch="os:system")), "arch"),
    (mutate(lambda d: d.update(arch="os.system")), "arch"),
    (mutate(lambda d: d.update(arch_args=[1])), "arch_args"),
    (mutate(lambda d: d["arch_args"].update(width=[1])), "arch_args.width"),
    (mutate(lambda d: d["arch_args"].update({"bad-name": 1})), "bad argument name"),
    (mutate(lambda d: d["arch_args"].update(num_classes=3)), "num_classes"),
    (mutate(lambda d: d.update(classes=[])), "classes"),
    (mutate(lambda d: d["classes"].append({"label": 3, "name": "again"})), "appears twice"),
    (mutate(lambda d: d["classes"][0].update(label=-1)), r"classes\[0\].label"),
    (mutate(lambda d: d["classes"][0].update(label=True)), r"classes\[0\].label"),
    (mutate(lambda d: d["classes"][1].update(name="")), r"classes\[1\].name"),
    (mutate(lambda d: d["classes"][1].update(name="a\nb")), r"classes\[1\].name"),
    (mutate(lambda d: d["classes"][1].update(extra=1)), r"classes\[1\]"),
    (mutate(lambda d: d.update(input_shape=[1, 28])), "input_shape"),
    (mutate(lambda d: d.update(input_shape=[1, 28, 0])), "input_shape"),
    (mutate(lambda d: d.update(training=[])), "training"),
    (mutate(lambda d: d["training"].update(epochs="2")), "training.epochs"),
    (mutate(lambda d: d["training"].update(classes=["a"])), "training.classes"),
    (mutate(lambda d: d["training"].update(deep=[[[[[[[[[[1]]]]]]]]]])), "nested"),
    (b'{"format": "pnc-pack-model", "format": "pnc-pack-model"}', "twice"),
    (json.dumps(good()).replace("0.99", "NaN").encode(), "NaN"),
    (b"\xff\xfe{}", "UTF-8"),
    (b"{not json", "bad JSON"),
    (b"[1, 2]", "object"),
    (b"[" * 100000 + b"]" * 100000, "nested too deeply"),
    (b" " * (MAX_CONFIG_BYTES + 1), "limit"),
])
def test_bad_configs(data, match):
    with pytest.raises(FormatError, match=match):
        ModelConfig.from_json(data)


def test_read_config_missing(tmp_path):
    with pytest.raises(ModelNotFoundError):
        read_config(tmp_path)


def test_config_module_is_torch_free():
    import subprocess
    import sys

    code = "import sys, pnc_pack.zoo.config as c; assert 'torch' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
