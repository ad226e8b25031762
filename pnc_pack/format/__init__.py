"""bytes <-> CloneDelta, torch-free. See spec/clone-delta-v1.md."""

from pnc_pack.format.delta import CloneDelta, ClonedModule, LabelEntry, Mask, RawTensor, Signature  # noqa: F401
