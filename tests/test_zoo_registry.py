"""The architecture registry: names only, entry points only by exact name, never an import path."""

import importlib
import importlib.metadata
import sys

import pytest
import torch
from torch import nn

from pnc_pack.errors import ArchitectureError
from pnc_pack.zoo import ZooModel, build_model, get_arch, list_archs, mark, register_arch, registry


class ToyNet(ZooModel):
    arch = "toy-net"

    def __init__(self, num_classes: int = 2, in_channels: int = 1, image_size: int = 4):
        super().__init__()
        self.arch_args = {"num_classes": num_classes, "in_channels": in_channels, "image_size": image_size}
        self.input_shape = (in_channels, image_size, image_size)
        self.blocks = nn.ModuleList([nn.Sequential(nn.Conv2d(in_channels, 3, 1), mark(nn.ReLU(), 3))])
        self.head = nn.Linear(3, num_classes)


class FakeEntryPoint:
    def __init__(self, name, value, obj, loads):
        self.name, self.value, self.group, self._obj, self._loads = name, value, registry.ENTRY_POINT_GROUP, obj, loads

    def load(self):
        self._loads.append(self.name)
        return self._obj


@pytest.fixture
def fake_eps(monkeypatch):
    """Patch importlib.metadata.entry_points; returns (list of entry points to fill, list of loaded names)."""
    eps, loads, groups = [], [], []

    def entry_points(**kw):
        groups.append(kw.get("group"))
        return [ep for ep in eps if kw.get("group") == registry.ENTRY_POINT_GROUP]

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    registry._load_builtins()
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    return eps, loads, groups


@pytest.mark.parametrize("name", ["os:system", "os.system", "subprocess", "pnc_pack.zoo.lenet:LeNet5",
                                  "../lenet5", "LeNet5", "", "a" * 65, None, 5])
def test_bad_or_unknown_names_never_import(name, fake_eps, monkeypatch):
    imported = []
    real = importlib.import_module
    monkeypatch.setattr(importlib, "import_module",
                        lambda n, *a, **k: imported.append(n) or real(n, *a, **k))
    with pytest.raises(ArchitectureError) as exc:
        build_model(name, {})
    assert "lenet5" in str(exc.value)  # lists the known names
    assert all(n.startswith("pnc_pack.zoo.") for n in imported)
    assert not fake_eps[1]


def test_unknown_valid_name_lists_known(fake_eps):
    with pytest.raises(ArchitectureError, match="not registered.*lenet5.*resnet18"):
        get_arch("no-such-net")


def test_entry_point_found_by_exact_name(fake_eps):
    eps, loads, _ = fake_eps
    eps.append(FakeEntryPoint("toy-net", "toypkg.nets:ToyNet", ToyNet, loads))
    eps.append(FakeEntryPoint("other", "toypkg.nets:Other", ToyNet, loads))
    assert "toy-net" in list_archs()
    m = build_model("toy-net", {"num_classes": 4})
    assert isinstance(m, ToyNet) and m.arch == "toy-net" and m(torch.rand(1, 1, 4, 4)).shape == (1, 4)
    assert loads == ["toy-net"]  # only the entry point asked for was loaded
    build_model("toy-net", {})
    assert loads == ["toy-net"]  # cached after the first load


def test_builtins_win_over_entry_points(fake_eps):
    eps, loads, groups = fake_eps
    eps.append(FakeEntryPoint("lenet5", "evil:Net", ToyNet, loads))
    assert type(build_model("lenet5", {})).__name__ == "LeNet5"
    assert loads == [] and groups == []  # entry points not even listed for a built-in name


def test_entry_point_must_build_a_zoo_model(fake_eps):
    eps, loads, _ = fake_eps
    eps.append(FakeEntryPoint("not-a-model", "x:y", lambda **kw: nn.Linear(2, 2), loads))
    with pytest.raises(ArchitectureError, match="not a ZooModel"):
        build_model("not-a-model", {})


def test_entry_point_load_failure_is_typed(fake_eps):
    eps, loads, _ = fake_eps

    class Broken(FakeEntryPoint):
        def load(self):
            raise ImportError("no module named toypkg")

    eps.append(Broken("broken", "toypkg:Net", None, loads))
    with pytest.raises(ArchitectureError, match="failed to load"):
        get_arch("broken")


def test_ambiguous_entry_points_refused(fake_eps):
    eps, loads, _ = fake_eps
    eps.append(FakeEntryPoint("twice", "a:Net", ToyNet, loads))
    eps.append(FakeEntryPoint("twice", "b:Net", ToyNet, loads))
    with pytest.raises(ArchitectureError, match="several"):
        get_arch("twice")
    assert loads == []


def test_register_arch_rules(fake_eps):
    with pytest.raises(ArchitectureError):
        register_arch("os.system")(ToyNet)
    register_arch("toy-local")(ToyNet)
    assert get_arch("toy-local") is ToyNet
    with pytest.raises(ArchitectureError, match="already registered"):
        register_arch("toy-local")(lambda **kw: None)


@pytest.mark.parametrize("args,match", [
    ({"num_classes": "5"}, "num_classes"),
    ({"num_classes": 0}, "num_classes"),
    ({"num_classes": True}, "num_classes"),
    ({"no_such_arg": 1}, "bad arguments"),
    ({"width": {"nested": 1}}, "plain"),
    ({"__class__": 1}, "bad argument name"),
    ([("num_classes", 2)], "map"),
])
def test_bad_arch_args(args, match):
    with pytest.raises(ArchitectureError, match=match):
        build_model("lenet5", args)


def test_registry_import_is_torch_free():
    import subprocess

    code = ("import sys; from pnc_pack.zoo import registry, config; "
            "print(registry.list_archs()); assert 'torch' not in sys.modules")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "lenet5" in out.stdout
