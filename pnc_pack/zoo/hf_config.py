"""Model folders in the transformers layout, read as data: config.json + preprocessor_config.json -> a ModelConfig.

A transformers folder holds ``config.json`` (with a ``model_type``), ``preprocessor_config.json`` and
``model.safetensors`` (or ``model.safetensors.index.json`` and the shards it lists). Nothing in it names code: the
``model_type`` picks one of six fixed families (``ALLOWED``, each one registered architecture ``hf-*`` wrapping one
fixed transformers class), and only the keys that family's class takes, type-checked and bounded, become the
architecture's arguments (lists as compact JSON strings). Keys that ask for code or another loading path
(``auto_map``, ``quantization_config``, ``attn_implementation``, ``custom_pipelines``, ...) and any unknown or
unlisted ``model_type`` are an :class:`ArchitectureError`; bad JSON, oversized files or values are a
:class:`FormatError`. This module is torch-free and never imports transformers: every check runs before anything is
imported. The preprocessor config becomes the ``pp_*`` arguments (resize, centre crop, rescale, normalise) that the
architecture applies to images in [0, 1] (``pnc_pack.zoo.hf``).
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import Any, Mapping

from pnc_pack.errors import ArchitectureError, FormatError, ModelNotFoundError

CONFIG_FILE = "config.json"
PREPROCESSOR_FILE = "preprocessor_config.json"
WEIGHTS_FILE = "model.safetensors"
INDEX_FILE = "model.safetensors.index.json"
MAX_JSON_BYTES = 1 << 20
MAX_SHARDS = 256
MAX_STRING = 4096

# model_type -> (registered architecture, the transformers classes it builds: config, model; constants)
ALLOWED = {
    "resnet": ("hf-resnet", "ResNetConfig", "ResNetForImageClassification"),
    "regnet": ("hf-regnet", "RegNetConfig", "RegNetForImageClassification"),
    "convnext": ("hf-convnext", "ConvNextConfig", "ConvNextForImageClassification"),
    "convnextv2": ("hf-convnextv2", "ConvNextV2Config", "ConvNextV2ForImageClassification"),
    "mobilenet_v2": ("hf-mobilenet-v2", "MobileNetV2Config", "MobileNetV2ForImageClassification"),
    "efficientnet": ("hf-efficientnet", "EfficientNetConfig", "EfficientNetForImageClassification"),
}
ARCH_TO_TYPE = {arch: mt for mt, (arch, _, _) in ALLOWED.items()}

# Keys that load code, change the loading path or the numerics: never honoured, always refused.
FORBIDDEN = ("auto_map", "quantization_config", "attn_implementation", "_attn_implementation", "custom_pipelines",
             "trust_remote_code", "code_revision", "_commit_hash", "torch_dtype_override", "use_kernels")
ACTIVATIONS = ("relu", "relu6", "gelu", "silu", "swish")

_I, _F, _B, _L = "int", "float", "bool", "ints"
_COMMON = {"num_channels": (_I, 1, 4)}
_STAGES = {"hidden_sizes": (_L, 1, 8192), "depths": (_L, 1, 64), "hidden_act": ACTIVATIONS}
# family -> {key: (kind, lo, hi) or a tuple of allowed strings}
KEYS: dict[str, dict[str, Any]] = {
    "resnet": {**_COMMON, **_STAGES, "embedding_size": (_I, 1, 8192), "layer_type": ("basic", "bottleneck"),
               "downsample_in_first_stage": (_B,), "downsample_in_bottleneck": (_B,)},
    "regnet": {**_COMMON, **_STAGES, "embedding_size": (_I, 1, 8192), "groups_width": (_I, 1, 8192),
               "layer_type": ("x", "y"), "downsample_in_first_stage": (_B,)},
    "convnext": {**_COMMON, **_STAGES, "patch_size": (_I, 1, 64), "num_stages": (_I, 4, 4),
                 "layer_norm_eps": (_F, 1e-12, 1.0), "layer_scale_init_value": (_F, 0.0, 10.0),
                 "image_size": (_I, 1, 4096)},
    "convnextv2": {**_COMMON, **_STAGES, "patch_size": (_I, 1, 64), "num_stages": (_I, 4, 4),
                   "layer_norm_eps": (_F, 1e-12, 1.0), "image_size": (_I, 1, 4096)},
    "mobilenet_v2": {**_COMMON, "image_size": (_I, 1, 4096), "depth_multiplier": (_F, 0.01, 8.0),
                     "depth_divisible_by": (_I, 1, 256), "min_depth": (_I, 1, 4096), "expand_ratio": (_F, 1.0, 16.0),
                     "output_stride": (_I, 8, 32), "first_layer_is_expansion": (_B,), "finegrained_output": (_B,),
                     "hidden_act": ACTIVATIONS, "tf_padding": (_B,), "layer_norm_eps": (_F, 1e-12, 1.0)},
    "efficientnet": {**_COMMON, "image_size": (_I, 1, 4096), "width_coefficient": (_F, 0.01, 8.0),
                     "depth_coefficient": (_F, 0.01, 8.0), "depth_divisor": (_I, 1, 256),
                     "kernel_sizes": (_L, 1, 15), "in_channels": (_L, 1, 8192), "out_channels": (_L, 1, 8192),
                     "depthwise_padding": (_L, 0, 64), "strides": (_L, 1, 2), "num_block_repeats": (_L, 1, 64),
                     "expand_ratios": (_L, 1, 16), "squeeze_expansion_ratio": (_F, 0.0, 1.0),
                     "hidden_act": ACTIVATIONS, "hidden_dim": (_I, 1, 16384), "pooling_type": ("mean", "max"),
                     "batch_norm_eps": (_F, 1e-12, 1.0), "batch_norm_momentum": (_F, 0.0, 1.0)},
}
LIST_KEYS = frozenset(k for keys in KEYS.values() for k, spec in keys.items() if spec[0] == _L)

_PROCESSORS = ("ConvNextImageProcessor", "BitImageProcessor", "ViTImageProcessor", "EfficientNetImageProcessor",
               "MobileNetV2ImageProcessor", "ConvNextFeatureExtractor", "ViTFeatureExtractor",
               "MobileNetV2FeatureExtractor", "BitFeatureExtractor")
_NAME_RE = re.compile(r"\A[A-Za-z][A-Za-z0-9_]{0,63}\Z")


def _err(where: str, msg: str) -> ArchitectureError:
    return ArchitectureError(f"{where}: {msg}")


def load_json(data: bytes, where: str) -> dict:
    """A JSON object from at most MAX_JSON_BYTES of UTF-8 (no duplicate keys, no NaN), else FormatError."""
    if len(data) > MAX_JSON_BYTES:
        raise FormatError(f"{where}: {len(data)} bytes, more than the limit of {MAX_JSON_BYTES}")

    def pairs(items):
        out = {}
        for k, v in items:
            if k in out:
                raise FormatError(f"{where}: key {k!r} appears twice in one object")
            out[k] = v
        return out

    def constant(name):
        raise FormatError(f"{where}: {name} is not allowed")

    try:
        obj = json.loads(data.decode("utf-8"), object_pairs_hook=pairs, parse_constant=constant)
    except UnicodeDecodeError:
        raise FormatError(f"{where}: not UTF-8") from None
    except json.JSONDecodeError as exc:
        raise FormatError(f"{where}: bad JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except RecursionError:
        raise FormatError(f"{where}: JSON nested too deeply") from None
    if not isinstance(obj, dict):
        raise FormatError(f"{where}: expected a JSON object")
    _bounded(obj, where, 0)
    return obj


def _bounded(v: Any, where: str, depth: int) -> None:
    if depth > 8:
        raise FormatError(f"{where}: nested more than 8 levels")
    if isinstance(v, dict):
        if len(v) > 100_000:
            raise FormatError(f"{where}: more than 100000 keys")
        for k, x in v.items():
            if len(k) > 256:
                raise FormatError(f"{where}: key of {len(k)} characters")
            _bounded(x, f"{where}.{k[:64]}", depth + 1)
    elif isinstance(v, list):
        for i, x in enumerate(v):
            _bounded(x, f"{where}[{i}]", depth + 1)
    elif isinstance(v, str) and len(v) > MAX_STRING:
        raise FormatError(f"{where}: a string of {len(v)} characters (limit {MAX_STRING})")


def is_hf_config(obj: Any) -> bool:
    """A config.json in the transformers layout (not a pnc-pack zoo config)."""
    return isinstance(obj, Mapping) and "model_type" in obj and obj.get("format") != "pnc-pack-model"


def check_forbidden(obj: Mapping, where: str) -> None:
    for key in FORBIDDEN:
        if key in obj:
            raise _err(where, f"key {key!r} is refused: pnc-pack never runs repository code or another loading "
                              "path; remove it")


def model_type(obj: Mapping, where: str = CONFIG_FILE) -> str:
    """The config's model_type, checked against the allow-list (ArchitectureError before anything is imported)."""
    check_forbidden(obj, where)
    mt = obj.get("model_type")
    if not isinstance(mt, str) or mt not in ALLOWED:
        shown = repr(mt)[:80]
        raise _err(where, f"model_type {shown} is not one of the allowed image classifiers "
                          f"({', '.join(sorted(ALLOWED))}); a model type never names code")
    return mt


def _value(key: str, v: Any, spec: Any, where: str) -> Any:
    if isinstance(spec, tuple) and spec and spec[0] not in (_I, _F, _B, _L):  # a choice of strings
        if not isinstance(v, str) or v not in spec:
            raise _err(where, f"{key} must be one of {', '.join(spec)}, got {repr(v)[:80]}")
        return v
    kind = spec[0]
    if kind == _B:
        if not isinstance(v, bool):
            raise _err(where, f"{key} must be true or false, got {repr(v)[:80]}")
        return v
    if kind == _I:
        if isinstance(v, list) and len(v) == 2 and v[0] == v[1]:  # image_size / patch_size as a square pair
            v = v[0]
        if not isinstance(v, int) or isinstance(v, bool) or not spec[1] <= v <= spec[2]:
            raise _err(where, f"{key} must be an integer in [{spec[1]}, {spec[2]}], got {repr(v)[:80]}")
        return v
    if kind == _F:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) \
                or not spec[1] <= v <= spec[2]:
            raise _err(where, f"{key} must be a number in [{spec[1]}, {spec[2]}], got {repr(v)[:80]}")
        return float(v)
    if not isinstance(v, list) or len(v) > 16 or not all(
            isinstance(x, int) and not isinstance(x, bool) and spec[1] <= x <= spec[2] for x in v):
        raise _err(where, f"{key} must be a list of at most 16 integers in [{spec[1]}, {spec[2]}], "
                          f"got {repr(v)[:80]}")
    return json.dumps(v, separators=(",", ":"))


def _classes(obj: Mapping, where: str) -> list[dict]:
    id2label = obj.get("id2label")
    n = obj.get("num_labels")
    if id2label is None:
        if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 100_000:
            raise _err(where, "needs id2label (or num_labels) naming the classifier's outputs")
        return [{"label": i, "name": f"LABEL_{i}"} for i in range(n)]
    if not isinstance(id2label, Mapping) or not 1 <= len(id2label) <= 100_000:
        raise _err(where, "id2label must map '0'..'N-1' to class names")
    out = []
    for i in range(len(id2label)):
        name = id2label.get(str(i))
        if not isinstance(name, str) or not 0 < len(name) <= 256 or any(ord(c) < 32 or ord(c) == 127 for c in name):
            raise _err(where, f"id2label[{i}] must be a class name of 1..256 printable characters")
        out.append({"label": i, "name": name})
    if n is not None and n != len(out):
        raise _err(where, f"num_labels is {n!r} but id2label lists {len(out)}")
    # Class names that are all distinct decimal integers name dataset labels ("5" is label 5 of an MNIST-like
    # dataset, as a zoo config's classes say); any other names keep labels 0..N-1.
    names = [c["name"] for c in out]
    if all(x.isdigit() and x.isascii() and len(x) <= 9 for x in names) and len({int(x) for x in names}) == len(out):
        out = [{"label": int(c["name"]), "name": c["name"]} for c in out]
    return out


def _floats3(v: Any, key: str, where: str, positive: bool) -> str:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        v = [v] * 3
    if not isinstance(v, list) or not 1 <= len(v) <= 4 or not all(
            isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and -1e3 < x < 1e3
            and (x > 0 or not positive) for x in v):
        raise _err(where, f"{key} must be a list of finite numbers{' > 0' if positive else ''}, got {repr(v)[:80]}")
    return json.dumps([float(x) for x in v], separators=(",", ":"))


def preprocessing_args(pp: Mapping, where: str = PREPROCESSOR_FILE) -> dict[str, Any]:
    """The ``pp_*`` arguments of a preprocessor_config.json: what each image goes through, in order.

    ``pp_resize``: the square size images are resized to (``size.shortest_edge`` / ``crop_pct`` when a centre crop
    follows, as ConvNextImageProcessor does, else ``size``); ``pp_crop``: the centre crop (0: none); ``pp_scale``
    and ``pp_offset``: pixel = x * pp_scale + pp_offset for x in [0, 1] (``rescale_factor`` * 255 when
    ``do_rescale``, EfficientNet's ``rescale_offset``); ``pp_mean`` / ``pp_std``: the normalisation (std squared
    under EfficientNet's ``include_top``, which divides by it twice)."""
    check_forbidden(pp, where)
    for key in ("image_processor_type", "feature_extractor_type"):
        v = pp.get(key)
        if v is not None and (not isinstance(v, str) or v.removesuffix("Fast").removesuffix("Pil") not in _PROCESSORS):
            raise _err(where, f"{key} {repr(v)[:80]} is not one of the known image processors "
                              f"({', '.join(_PROCESSORS)})")
    size = pp.get("size", {"height": 224, "width": 224})
    if isinstance(size, int) and not isinstance(size, bool):
        size = {"shortest_edge": size}
    if not isinstance(size, Mapping):
        raise _err(where, f"size must be an object, got {repr(size)[:80]}")
    if "shortest_edge" in size:
        edge = size["shortest_edge"]
    elif "height" in size and "width" in size and size["height"] == size["width"]:
        edge = size["height"]
    else:
        raise _err(where, f"size {repr(dict(size))[:80]}: only square sizes or shortest_edge are supported")
    if not isinstance(edge, int) or isinstance(edge, bool) or not 4 <= edge <= 2048:
        raise _err(where, f"size must be an integer in [4, 2048], got {repr(edge)[:80]}")
    if pp.get("do_resize", True) is not True:
        raise _err(where, "do_resize false is not supported: each model sees images at its own size")
    crop = 0
    crop_pct = pp.get("crop_pct")
    if "shortest_edge" in size and crop_pct is not None and edge < 384:
        if isinstance(crop_pct, bool) or not isinstance(crop_pct, (int, float)) or not 0.1 <= crop_pct <= 1.0:
            raise _err(where, f"crop_pct must be a number in [0.1, 1], got {repr(crop_pct)[:80]}")
        resize = int(edge / crop_pct)
        crop = edge if resize != edge else 0
    else:
        resize = edge
        if pp.get("do_center_crop") is True:
            cs = pp.get("crop_size", {})
            c = cs.get("height") if isinstance(cs, Mapping) else cs
            if not isinstance(c, int) or isinstance(c, bool) or not 4 <= c <= resize:
                raise _err(where, f"crop_size must be a size no larger than {resize}, got {repr(cs)[:80]}")
            crop = c if c != resize else 0
    if pp.get("do_rescale", True) is True:
        f = pp.get("rescale_factor", 1 / 255)
        if isinstance(f, bool) or not isinstance(f, (int, float)) or not 0 < f <= 1:
            raise _err(where, f"rescale_factor must be a number in (0, 1], got {repr(f)[:80]}")
        scale = float(f) * 255.0
    else:
        scale = 255.0
    offset = -1.0 if pp.get("rescale_offset") is True else 0.0
    if pp.get("do_normalize", True) is True:
        mean = _floats3(pp.get("image_mean", [0.5, 0.5, 0.5]), "image_mean", where, False)
        std = _floats3(pp.get("image_std", [0.5, 0.5, 0.5]), "image_std", where, True)
    else:
        mean, std = "[0.0]", "[1.0]"
    top = pp.get("include_top", str(pp.get("image_processor_type", "")).startswith("EfficientNet"))
    if not isinstance(top, bool):
        raise _err(where, f"include_top must be true or false, got {repr(top)[:80]}")
    if top and pp.get("do_normalize", True) is True:  # EfficientNet's processor divides by image_std once more
        std = json.dumps([s * s for s in json.loads(std)], separators=(",", ":"))
    resample = pp.get("resample", 2)
    if not isinstance(resample, int) or isinstance(resample, bool) or not 0 <= resample <= 5:
        raise _err(where, f"resample must be a PIL filter number 0..5, got {repr(resample)[:80]}")
    return {"pp_resize": resize, "pp_crop": crop, "pp_scale": scale, "pp_offset": offset, "pp_mean": mean,
            "pp_std": std, "pp_resample": resample}


def arch_from_config(obj: Mapping, pp: Mapping | None, where: str = CONFIG_FILE) -> tuple[str, dict, list[dict]]:
    """(registered architecture, arch_args, classes) of a transformers config.json and its preprocessor config."""
    mt = model_type(obj, where)
    archs = obj.get("architectures")
    if archs is not None and (not isinstance(archs, list) or not all(
            isinstance(a, str) and _NAME_RE.match(a) for a in archs)):
        raise _err(where, f"architectures must be a list of class names, got {repr(archs)[:80]}")
    args: dict[str, Any] = {}
    for key, spec in KEYS[mt].items():
        if key in obj and obj[key] is not None:
            args[key] = _value(key, obj[key], spec, where)
    classes = _classes(obj, where)
    args["num_labels"] = len(classes)
    args.update(preprocessing_args(pp if pp is not None else {}, PREPROCESSOR_FILE))
    if args.get("num_channels", 3) != 3:
        raise _err(where, "num_channels must be 3: image classifiers of this kind take RGB images")
    return ALLOWED[mt][0], args, classes


def shard_names(index: Mapping, where: str = INDEX_FILE) -> list[str]:
    """The shard files a model.safetensors.index.json lists (plain file names, at most MAX_SHARDS)."""
    from pnc_pack.refs import check_file_name

    wm = index.get("weight_map")
    if not isinstance(wm, Mapping) or not wm:
        raise FormatError(f"{where}: expected a non-empty 'weight_map' of tensor names to shard files")
    names = sorted(set(wm.values()))
    if len(names) > MAX_SHARDS:
        raise FormatError(f"{where}: {len(names)} shards, more than {MAX_SHARDS}")
    for n in names:
        try:
            check_file_name(n)
        except Exception:
            raise FormatError(f"{where}: shard {repr(n)[:80]} is not a plain file name") from None
        if not n.endswith(".safetensors"):
            raise FormatError(f"{where}: shard {n!r} is not a .safetensors file")
    return names


def _read(path: Path) -> bytes:
    with open(path, "rb") as f:
        return f.read(MAX_JSON_BYTES + 1)


def layout_files(folder: str | os.PathLike) -> tuple[str, ...]:
    """Every file a model folder uses, by its layout: a zoo folder (config.json, model.safetensors) or a
    transformers one (config.json, preprocessor_config.json, and model.safetensors or the index and its shards)."""
    folder = Path(folder)
    if not (folder / CONFIG_FILE).is_file():
        raise ModelNotFoundError(f"model folder {folder}: {CONFIG_FILE} not found")
    obj = load_json(_read(folder / CONFIG_FILE), str(folder / CONFIG_FILE))
    if not is_hf_config(obj):
        return (CONFIG_FILE, WEIGHTS_FILE)
    model_type(obj, str(folder / CONFIG_FILE))
    files = [CONFIG_FILE, PREPROCESSOR_FILE]
    if (folder / WEIGHTS_FILE).is_file():
        return (*files, WEIGHTS_FILE)
    if (folder / INDEX_FILE).is_file():
        index = load_json(_read(folder / INDEX_FILE), str(folder / INDEX_FILE))
        return (*files, INDEX_FILE, *shard_names(index))
    raise ModelNotFoundError(f"model folder {folder}: neither {WEIGHTS_FILE} nor {INDEX_FILE} found")


def read_hf_config(config: bytes, preprocessor: bytes | None, where: str):
    """A :class:`~pnc_pack.zoo.config.ModelConfig` for a transformers folder's config and preprocessor bytes."""
    from pnc_pack.zoo.config import ModelConfig

    obj = load_json(config, f"{where}/{CONFIG_FILE}")
    mt = model_type(obj, f"{where}/{CONFIG_FILE}")
    pp = load_json(preprocessor, f"{where}/{PREPROCESSOR_FILE}") if preprocessor is not None else None
    if pp is None:
        raise ModelNotFoundError(f"model folder {where}: {PREPROCESSOR_FILE} not found (a transformers image "
                                 "classifier needs it: how each image is resized and normalised)")
    arch, args, classes = arch_from_config(obj, pp, f"{where}/{CONFIG_FILE}")
    side = args["pp_resize"]
    return ModelConfig(arch, args, classes, [3, side, side],
                       training={"source": "transformers", "model_type": mt})
