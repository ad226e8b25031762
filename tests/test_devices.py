"""Devices: --device/--precision resolution, the error for a device that does not exist, the provenance fields, and
that a CPU build still gives today's bytes (the learned tensors, masks and metrics of the conftest clone)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import platform

import pytest
import torch

from pnc_pack.devices import available_devices, check_precision, resolve_device
from pnc_pack.errors import UsageError

NO_CUDA = not torch.cuda.is_available()


def learned_digest(d) -> str:
    """sha256 over what a build learns and measures (adapters, masks, positions, classifier, metrics); the
    provenance (paths, versions, device) is left out."""
    h = hashlib.sha256()
    for m in d.modules:
        for k, t in sorted(m.adapter.items()):
            h.update(f"{k}|{t.dtype}|{t.shape}|".encode())
            h.update(t.data)
        for mk in m.masks:
            h.update(f"{mk.layer}|{mk.filters}|".encode())
            h.update(mk.bits)
        h.update(f"{m.target_position}|{m.source_position}".encode())
    for k, t in sorted(d.classifier.items()):
        h.update(f"{k}|{t.dtype}|{t.shape}|".encode())
        h.update(t.data)
    h.update(json.dumps(d.metrics, sort_keys=True).encode())
    return h.hexdigest()


# learned_digest of the conftest clone built by the code before devices existed (commit 14edd1b), torch 2.13.0, one
# thread, per kind of CPU: MKL and oneDNN pick their kernels by vendor and instruction set, and the floats differ with
# them. Keyed by (vendor_id, torch's CPU capability); None: any capability of that vendor (not recorded). Each was
# measured by building the clone with 14edd1b's pnc_pack on such a machine (this code gives the same there).
BEFORE_DEVICES = {
    ("AuthenticAMD", None): "b3c8faafc871a62deeb3a9e904e23bdc2355cc0ff62ea953ee512f063a48a18b",  # AMD EPYC, 2026-12-04
    ("GenuineIntel", "AVX512"): "f3635eb27c90ffdb305b0c36871a419ec34c897dfe65acd5082f5763bd068bc3",  # Xeon, 12-05
}


def cpu_kind() -> tuple[str, str]:
    """(vendor_id from /proc/cpuinfo, or the platform's processor name elsewhere; torch's CPU capability)."""
    vendor = platform.processor()
    with contextlib.suppress(OSError):
        for line in open("/proc/cpuinfo", encoding="ascii", errors="replace"):
            if line.startswith("vendor_id"):
                vendor = line.split(":", 1)[1].strip()
                break
    return vendor, torch.backends.cpu.get_cpu_capability()


def before_devices_pin() -> str | None:
    vendor, capability = cpu_kind()
    return BEFORE_DEVICES.get((vendor, capability), BEFORE_DEVICES.get((vendor, None)))


def test_auto_and_cpu_resolve():
    assert resolve_device("cpu") == torch.device("cpu")
    want = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == want and resolve_device(None).type == want
    assert available_devices()[0] == "cpu"
    assert check_precision("BF16") == "bf16" and check_precision(None) == "fp32"


@pytest.mark.skipif(not NO_CUDA, reason="this machine has CUDA")
@pytest.mark.parametrize("spec", ["cuda", "cuda:0", "cuda:3"])
def test_missing_cuda_is_a_usage_error_naming_the_devices(spec):
    with pytest.raises(UsageError, match=r"available devices: cpu$"):
        resolve_device(spec)


@pytest.mark.parametrize("bad", ["tpu", "cuda:x", "gpu"])
def test_unknown_devices_and_precisions_are_usage_errors(bad):
    with pytest.raises(UsageError, match="available"):
        resolve_device(bad)
    with pytest.raises(UsageError, match="fp32, bf16"):
        check_precision("fp8")


@pytest.mark.skipif(not NO_CUDA, reason="this machine has CUDA")
@pytest.mark.parametrize("command", [["build", "--target", "nope"], ["add", "nope.pncd"]])
def test_cli_build_with_missing_cuda_fails_before_loading_anything(tmp_path, capsys, command):
    """build and add (a module more): the device is checked before the models, the base delta or the data."""
    from pnc_pack.cli import main

    out = tmp_path / "x.pncd"
    rc = main([*command, "--source", str(tmp_path / "nope"), "--data", "digits", "--clone-classes", "5",
               "--device", "cuda", "-o", str(out)])
    assert rc == 2 and not out.exists()
    assert "available devices: cpu" in capsys.readouterr().err


def test_provenance_records_device_and_precision(built):
    assert built.provenance["device"] == "cpu" and built.provenance["precision"] == "fp32"
    assert "deterministic" not in built.provenance  # CUDA builds only


@pytest.mark.skipif(torch.__version__.split("+")[0] != "2.13.0" or torch.get_num_threads() != 1,
                    reason="pinned on torch 2.13.0 with one thread (CPU bytes depend on the build and thread count)")
def test_cpu_build_is_byte_identical_to_before_devices(built):
    pin = before_devices_pin()
    if pin is None:  # a kind of CPU this project has not run on: nothing to compare with, so say what to record
        pytest.skip(f"no pin for CPU {cpu_kind()}: build with 14edd1b's pnc_pack here and add {learned_digest(built)} "
                    "if it gives the same")
    assert learned_digest(built) == pin


def test_out_of_memory_is_one_line_suggesting_batch_size():
    from pnc_pack.devices import out_of_memory
    from pnc_pack.errors import BuildError

    with pytest.raises(BuildError, match=r"ran out of memory on cpu; try a smaller --batch-size"):
        with out_of_memory(torch.device("cpu")):
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")


def test_a_zoo_model_records_where_it_trained_unless_cpu_fp32():
    """config.json's training block names device and precision when they are not the CPU in fp32, so caches (the
    benchmarks') never take such a model for a CPU one; a CPU fp32 model's config is what it always was."""
    from pnc_pack.data import load_dataset
    from pnc_pack.zoo.training import train_model

    ds = load_dataset("digits")
    kw = dict(epochs=1, seed=0, data_fraction=0.2, device="cpu")
    _, plain = train_model("lenet5", None, ds, [0, 1], **kw)
    _, bf16 = train_model("lenet5", None, ds, [0, 1], precision="bf16", **kw)
    assert "device" not in plain.training and "precision" not in plain.training
    assert (bf16.training["device"], bf16.training["precision"]) == ("cpu", "bf16")


def test_an_operation_without_a_deterministic_kernel_is_one_line_naming_it():
    """Under --deterministic torch refuses such an operation (on CUDA e.g. the bilinear resize of an adapter between
    blocks of different sizes); the build reports it in one line and leaves the mode as it was."""
    from pnc_pack.devices import deterministic
    from pnc_pack.errors import BuildError

    with pytest.raises(BuildError, match=r"^--deterministic: put_ has no deterministic implementation in torch "):
        with deterministic(True):
            torch.zeros(3).put_(torch.tensor([0]), torch.tensor([1.0]))  # refused on every device
    assert not torch.are_deterministic_algorithms_enabled()
    with pytest.raises(RuntimeError, match="other"):  # any other error passes through unchanged
        with deterministic(True):
            raise RuntimeError("other")
