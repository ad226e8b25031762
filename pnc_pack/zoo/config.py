"""config.json of a pretrained-model folder: what the weights in model.safetensors are (torch-free).

A model folder is ``model.safetensors`` + ``config.json``. The config says which registered architecture to build
with which arguments, which class each output is, the input shape, and how the model was trained::

    {
      "format": "pnc-pack-model", "format_version": 1,
      "arch": "lenet5", "arch_args": {"image_size": 28, "in_channels": 1, "num_classes": 5},
      "classes": [{"label": 0, "name": "0"}, ...],          # output i is class classes[i]
      "input_shape": [1, 28, 28],                            # C, H, W; inputs are float32 in [0, 1]
      "training": {"data": "mnist5k", "classes": [0, 1, 2, 3, 4], "epochs": 3, "seed": 0,
                   "test_accuracy": 0.99, "versions": {"pnc_pack": "0.1.0", "torch": "2.13.0"}, ...}
    }

``to_json`` is deterministic (sorted keys, fixed indentation, UTF-8, trailing newline) so the file's sha256 (which a
ModelRef pins) depends only on the content. ``from_json`` reads at most ``MAX_CONFIG_BYTES``, refuses duplicate keys
and NaN/Infinity, and checks every field: any problem is a :class:`FormatError` naming the field.
``training`` is free-form metadata (JSON values, bounded depth and size); its well-known keys are type-checked.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from pnc_pack.errors import FormatError, ModelNotFoundError
from pnc_pack.refs import ARCH_RE

FORMAT_NAME = "pnc-pack-model"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
MAX_CONFIG_BYTES = 1 << 20
MAX_CLASSES = 100_000
MAX_NAME = 256
_MAX_DEPTH = 8

_FIELDS = {"format", "format_version", "arch", "arch_args", "classes", "input_shape", "training"}
_TRAINING_TYPES = {
    "data": str, "epochs": int, "seed": int, "batch_size": int, "lr": float, "label_smoothing": float,
    "data_fraction": float, "test_accuracy": float, "train_samples": int, "test_samples": int,
}


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


@dataclass
class ModelConfig:
    arch: str
    arch_args: dict[str, Any]
    classes: list[dict[str, Any]]
    input_shape: list[int]
    training: dict[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    def __post_init__(self):
        self.validate()

    # -- convenience ---------------------------------------------------------------------------------------------
    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def labels(self) -> list[int]:
        return [c["label"] for c in self.classes]

    @property
    def class_names(self) -> list[str]:
        return [c["name"] for c in self.classes]

    # -- (de)serialisation -----------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT_NAME,
            "format_version": self.format_version,
            "arch": self.arch,
            "arch_args": dict(sorted(self.arch_args.items())),
            "classes": [{"label": c["label"], "name": c["name"]} for c in self.classes],
            "input_shape": list(self.input_shape),
            "training": self.training,
        }

    def to_json(self) -> bytes:
        text = json.dumps(self.to_dict(), sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False)
        return (text + "\n").encode("utf-8")

    @classmethod
    def from_dict(cls, d: Any, where: str = "config.json") -> "ModelConfig":
        if not isinstance(d, Mapping):
            raise FormatError(f"{where}: expected a JSON object")
        unknown = set(d) - _FIELDS
        if unknown:
            raise FormatError(f"{where}: unknown field(s) {sorted(map(str, unknown))}")
        if d.get("format") != FORMAT_NAME:
            raise FormatError(f"{where}: field 'format' must be {FORMAT_NAME!r}, got {d.get('format')!r}")
        version = d.get("format_version")
        if not _is_int(version) or version < 1:
            raise FormatError(f"{where}: field 'format_version' must be a positive integer, got {version!r}")
        if version > FORMAT_VERSION:
            raise FormatError(f"{where}: format_version {version} is newer than this reader ({FORMAT_VERSION})")
        for key in ("arch", "arch_args", "classes", "input_shape"):
            if key not in d:
                raise FormatError(f"{where}: missing field {key!r}")
        return _construct(cls, d, version, where)

    @classmethod
    def from_json(cls, data: bytes | str, where: str = "config.json") -> "ModelConfig":
        if isinstance(data, str):
            data = data.encode("utf-8")
        if len(data) > MAX_CONFIG_BYTES:
            raise FormatError(f"{where}: {len(data)} bytes, more than the limit of {MAX_CONFIG_BYTES}")
        try:
            text = data.decode("utf-8")
            obj = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
        except UnicodeDecodeError as exc:
            raise FormatError(f"{where}: not UTF-8 ({exc.reason} at byte {exc.start})") from None
        except json.JSONDecodeError as exc:
            raise FormatError(f"{where}: bad JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
        except RecursionError:
            raise FormatError(f"{where}: JSON nested too deeply") from None
        return cls.from_dict(obj, where)

    # -- validation ------------------------------------------------------------------------------------------------
    def validate(self, where: str = "config.json") -> None:
        if not isinstance(self.arch, str) or not ARCH_RE.match(self.arch):
            raise FormatError(f"{where}: field 'arch' must be a registered-name string like 'lenet5', got {self.arch!r}")
        if not isinstance(self.arch_args, Mapping):
            raise FormatError(f"{where}: field 'arch_args' must be an object")
        for k, v in self.arch_args.items():
            if not isinstance(k, str) or not k.isidentifier() or k.startswith("_") or len(k) > 64:
                raise FormatError(f"{where}: arch_args: bad argument name {k!r}")
            if not isinstance(v, (bool, int, float, str)) or (isinstance(v, str) and len(v) > 256):
                raise FormatError(f"{where}: arch_args.{k}: value must be a bool, number or short string, got {v!r}")
        self.arch_args = dict(self.arch_args)
        if not isinstance(self.classes, list) or not 1 <= len(self.classes) <= MAX_CLASSES:
            raise FormatError(f"{where}: field 'classes' must be a list of 1..{MAX_CLASSES} entries")
        seen = set()
        for i, c in enumerate(self.classes):
            if not isinstance(c, Mapping) or set(c) != {"label", "name"}:
                raise FormatError(f"{where}: classes[{i}] must be an object with exactly 'label' and 'name'")
            if not _is_int(c["label"]) or not 0 <= c["label"] < 2**31:
                raise FormatError(f"{where}: classes[{i}].label must be a non-negative integer, got {c['label']!r}")
            if not isinstance(c["name"], str) or not 0 < len(c["name"]) <= MAX_NAME or any(
                ord(ch) < 32 or ord(ch) == 127 for ch in c["name"]
            ):
                raise FormatError(f"{where}: classes[{i}].name must be 1..{MAX_NAME} printable characters")
            if c["label"] in seen:
                raise FormatError(f"{where}: classes[{i}].label {c['label']} appears twice")
            seen.add(c["label"])
        self.classes = [{"label": c["label"], "name": c["name"]} for c in self.classes]
        nc = self.arch_args.get("num_classes")
        if nc is not None and nc != len(self.classes):
            raise FormatError(f"{where}: arch_args.num_classes is {nc!r} but 'classes' lists {len(self.classes)}")
        shape = self.input_shape
        if isinstance(shape, tuple):
            shape = list(shape)
        if not isinstance(shape, list) or len(shape) != 3 or not all(_is_int(s) and 1 <= s <= 65536 for s in shape):
            raise FormatError(f"{where}: field 'input_shape' must be [C, H, W] of positive integers, got {shape!r}")
        self.input_shape = shape
        if not isinstance(self.training, Mapping):
            raise FormatError(f"{where}: field 'training' must be an object")
        _check_plain(self.training, f"{where}: training", 0)
        for key, typ in _TRAINING_TYPES.items():
            if key in self.training:
                v = self.training[key]
                ok = isinstance(v, (int, float)) and not isinstance(v, bool) if typ is float else (
                    _is_int(v) if typ is int else isinstance(v, typ))
                if not ok:
                    raise FormatError(f"{where}: training.{key} must be {typ.__name__}, got {v!r}")
        if "classes" in self.training and not (
            isinstance(self.training["classes"], list) and all(_is_int(c) for c in self.training["classes"])
        ):
            raise FormatError(f"{where}: training.classes must be a list of integers")
        self.training = dict(self.training)


def _construct(cls, d, version, where):
    try:
        cfg = cls.__new__(cls)
        cfg.arch = d["arch"]
        cfg.arch_args = d["arch_args"]
        cfg.classes = d["classes"]
        cfg.input_shape = d["input_shape"]
        cfg.training = d.get("training", {})
        cfg.format_version = version
        cfg.validate(where)
    except (TypeError, AttributeError, KeyError) as exc:  # defensive: validation should catch everything first
        raise FormatError(f"{where}: {exc}") from None
    return cfg


def _check_plain(v: Any, where: str, depth: int) -> None:
    if depth > _MAX_DEPTH:
        raise FormatError(f"{where}: nested more than {_MAX_DEPTH} levels")
    if isinstance(v, Mapping):
        for k, x in v.items():
            if not isinstance(k, str) or len(k) > MAX_NAME:
                raise FormatError(f"{where}: bad key {k!r}")
            _check_plain(x, f"{where}.{k}", depth + 1)
    elif isinstance(v, list):
        for i, x in enumerate(v):
            _check_plain(x, f"{where}[{i}]", depth + 1)
    elif v is None or isinstance(v, (bool, int, str)):
        return
    elif isinstance(v, float):
        if v != v or v in (float("inf"), float("-inf")):
            raise FormatError(f"{where}: NaN or infinity is not allowed")
    else:
        raise FormatError(f"{where}: {type(v).__name__} is not a JSON value")


def _no_duplicates(pairs):
    out = {}
    for k, v in pairs:
        if k in out:
            raise FormatError(f"config.json: key {k!r} appears twice in one object")
        out[k] = v
    return out


def _no_constant(name):
    raise FormatError(f"config.json: {name} is not allowed")


def read_config(folder: str | os.PathLike) -> ModelConfig:
    """Read and validate ``folder/config.json`` (size-limited read); a transformers folder's config.json and
    preprocessor_config.json become a ModelConfig through :mod:`pnc_pack.zoo.hf_config` (torch-free)."""
    path = Path(folder) / CONFIG_FILE
    if not path.is_file():
        raise ModelNotFoundError(f"model folder {folder}: {CONFIG_FILE} not found")
    with open(path, "rb") as f:
        data = f.read(MAX_CONFIG_BYTES + 1)
    return config_from_bytes(data, lambda name: _read_optional(Path(folder) / name), str(folder))


def _read_optional(path: Path) -> bytes | None:
    if not path.is_file():
        return None
    with open(path, "rb") as f:
        return f.read(MAX_CONFIG_BYTES + 1)


def config_from_bytes(data: bytes, other, where: str) -> ModelConfig:
    """A model folder's ModelConfig from its config.json bytes; ``other(name)`` gives another file's bytes (or
    None), read only for a transformers folder (its preprocessor_config.json)."""
    from pnc_pack.zoo import hf_config

    if b'"model_type"' in data:
        obj = hf_config.load_json(data, f"{where}/{CONFIG_FILE}")
        if hf_config.is_hf_config(obj):
            return hf_config.read_hf_config(data, other(hf_config.PREPROCESSOR_FILE), where)
    return ModelConfig.from_json(data, where=f"{where}/{CONFIG_FILE}")
