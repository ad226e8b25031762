"""`pnc-pack train` and train_model: a loadable folder, accuracy well above chance, byte-identical reruns."""

import json

import pytest
import torch

from pnc_pack.cli import main
from pnc_pack.data import load_dataset
from pnc_pack.zoo import load_pretrained, local_ref
from pnc_pack.zoo.pretrained import weights_bytes
from pnc_pack.zoo.training import evaluate, prepare_split, train_model


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def test_cli_train_digits_lenet(tmp_path, capsys, digits):
    out = tmp_path / "m"
    rc = main(["train", "--arch", "lenet5", "--data", "digits", "--classes", "3,1,4", "--epochs", "3",
               "-o", str(out), "--json"])
    assert rc == 0
    result = json.loads(capsys.readouterr().out)
    model, cfg = load_pretrained(out, local_ref(out))
    assert cfg.labels == [3, 1, 4] and cfg.arch == "lenet5" and cfg.input_shape == [1, 28, 28]
    assert cfg.arch_args == {"num_classes": 3, "in_channels": 1, "image_size": 28}
    assert cfg.training["data"] == "digits" and cfg.training["epochs"] == 3 and cfg.training["test_samples"] == 109
    assert result["test_accuracy"] == cfg.training["test_accuracy"] > 0.8  # chance is 1/3
    # output i is label classes[i]: re-evaluating the loaded model gives the recorded accuracy
    X, y = prepare_split(*digits.test, [3, 1, 4], model.input_shape)
    assert abs(evaluate(model, X, y) - cfg.training["test_accuracy"]) < 1e-6
    assert result["files"]["model.safetensors"]["sha256"] == local_ref(out).files["model.safetensors"].sha256


def test_train_deterministic(digits):
    kw = dict(epochs=1, seed=5, data_fraction=0.5, batch_size=32)
    m1, c1 = train_model("lenet5", {}, digits, [0, 1], **kw)
    m2, c2 = train_model("lenet5", {}, digits, [0, 1], **kw)
    assert weights_bytes(m1) == weights_bytes(m2) and c1.to_json() == c2.to_json()
    assert c1.training["train_samples"] == 71 + 73  # half of each class (142 and 146 images), stratified
    m3, _ = train_model("lenet5", {}, digits, [0, 1], **dict(kw, seed=6))
    assert weights_bytes(m3) != weights_bytes(m1)
    assert not m1.training and not any(p.requires_grad for p in m1.parameters())


def test_train_bn_model_infers_channels(digits):
    model, cfg = train_model("plaincnn", {"width": 4, "image_size": 8}, digits, [7, 2], epochs=1,
                             data_fraction=0.3)
    assert cfg.arch_args == {"num_classes": 2, "in_channels": 1, "image_size": 8, "width": 4}
    assert model(torch.rand(2, 1, 8, 8)).shape == (2, 2)
    assert int(model.state_dict()["blocks.0.bn.num_batches_tracked"]) > 0


@pytest.mark.parametrize("args,code,msg", [
    (["--arch", "lenet5", "--data", "cifar10", "--classes", "0,1"], 2, "valid forms"),
    (["--arch", "os.system", "--data", "digits", "--classes", "0,1"], 6, "bad architecture name"),
    (["--arch", "nonet", "--data", "digits", "--classes", "0,1"], 6, "not registered"),
    (["--arch", "lenet5", "--data", "digits", "--classes", "0,12"], 2, "class 12"),
    (["--arch", "lenet5", "--data", "digits", "--classes", "0,0"], 2, "twice"),
    (["--arch", "lenet5", "--data", "digits", "--classes", "a,b"], 2, "--classes"),
    (["--arch", "lenet5", "--data", "digits", "--classes", "0,1", "--arch-arg", "x"], 2, "NAME=VALUE"),
    (["--arch", "lenet5", "--data", "digits", "--classes", "0,1", "--arch-arg", "num_classes=3"], 2, "num_classes"),
    (["--arch", "lenet5", "--data", "digits", "--classes", "0,1", "--arch-arg", "image_size=4"], 6, "image_size"),
    (["--arch", "lenet5", "--data", "digits", "--classes", "0,1", "--data-fraction", "2"], 2, "fraction"),
    (["--arch", "lenet5", "--data", "digits", "--classes", "0,1", "--lr", "-1"], 2, "lr"),
    (["--arch", "lenet5", "--data", "digits", "--classes", "0,,1"], 2, "empty item"),
    (["--arch", "lenet5", "--data", "digits", "--classes", "0,1", "--batch-size", "0"], 2, "--batch-size"),
])
def test_cli_errors(tmp_path, capsys, args, code, msg):
    rc = main(["train", *args, "--epochs", "1", "-o", str(tmp_path / "m")])
    err = capsys.readouterr().err
    assert rc == code, err
    assert msg in err and "Traceback" not in err
    assert not (tmp_path / "m" / "model.safetensors").exists()


def test_cli_refuses_zero_epochs(tmp_path, capsys):
    """An untrained model is never written (issue 20, item 11)."""
    rc = main(["train", "--arch", "lenet5", "--data", "digits", "--classes", "0,1", "--epochs", "0",
               "-o", str(tmp_path / "m")])
    assert rc == 2 and "--epochs" in capsys.readouterr().err and not (tmp_path / "m").exists()


def test_cli_refuses_overwrite(tmp_path, capsys):
    args = ["train", "--arch", "lenet5", "--data", "digits", "--classes", "0,1", "--epochs", "1",
            "--arch-arg", "image_size=16", "-o", str(tmp_path)]
    assert main(args) == 0
    assert load_pretrained(tmp_path)[1].input_shape == [1, 16, 16]
    before = (tmp_path / "model.safetensors").read_bytes()
    assert main(args) == 2 and "--force" in capsys.readouterr().err
    assert main([*args, "--seed", "1", "--force"]) == 0
    assert (tmp_path / "model.safetensors").read_bytes() != before


def test_parse_arch_arg():
    from pnc_pack.cli.train_cmd import parse_arch_arg

    assert parse_arch_arg("width=8") == ("width", 8)
    assert parse_arch_arg("width_mult=0.5") == ("width_mult", 0.5)
    assert parse_arch_arg("flag=True") == ("flag", True)
    assert parse_arch_arg("name=abc") == ("name", "abc")
