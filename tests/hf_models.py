"""Tiny random-config transformers image classifiers written in the real transformers layout (tests only).

``write_hf_folder(folder, model_type, ...)`` builds the model with its own transformers class, perturbs BatchNorm
statistics (so eval-mode BN is not the identity), and saves it with transformers' own ``save_pretrained`` and the
family's own image processor's ``save_pretrained``: config.json, model.safetensors, preprocessor_config.json.
"""

from __future__ import annotations

from pathlib import Path

import torch

TINY = {
    "resnet": dict(embedding_size=8, hidden_sizes=[8, 16, 16, 32], depths=[1, 1, 1, 1], layer_type="basic"),
    "regnet": dict(embedding_size=8, hidden_sizes=[8, 16, 16, 32], depths=[1, 1, 1, 1], groups_width=8),
    "convnext": dict(hidden_sizes=[8, 16, 16, 32], depths=[1, 1, 1, 1], patch_size=2),
    "convnextv2": dict(hidden_sizes=[8, 16, 16, 32], depths=[1, 1, 1, 1], patch_size=2),
    "mobilenet_v2": dict(depth_multiplier=0.25, finegrained_output=False, tf_padding=False),
    "efficientnet": dict(width_coefficient=0.1, depth_coefficient=0.1, hidden_dim=128),
}
CLASSES = {
    "resnet": ("ResNetConfig", "ResNetForImageClassification", "ConvNextImageProcessor"),
    "regnet": ("RegNetConfig", "RegNetForImageClassification", "ConvNextImageProcessor"),
    "convnext": ("ConvNextConfig", "ConvNextForImageClassification", "ConvNextImageProcessor"),
    "convnextv2": ("ConvNextV2Config", "ConvNextV2ForImageClassification", "ConvNextImageProcessor"),
    "mobilenet_v2": ("MobileNetV2Config", "MobileNetV2ForImageClassification", "MobileNetV2ImageProcessor"),
    "efficientnet": ("EfficientNetConfig", "EfficientNetForImageClassification", "EfficientNetImageProcessor"),
}
MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def make_hf_model(model_type: str, num_labels: int = 5, seed: int = 0, image_size: int = 32, labels=None,
                  **overrides):
    import transformers

    cfg_name, model_name, _ = CLASSES[model_type]
    args = dict(TINY[model_type], **overrides)
    if model_type in ("mobilenet_v2", "efficientnet", "convnext", "convnextv2"):
        args.setdefault("image_size", image_size)
    id2label = {i: f"class-{i}" for i in range(num_labels)} if labels is None else {
        i: str(c) for i, c in enumerate(labels)}  # integer names: dataset labels
    config = getattr(transformers, cfg_name)(id2label=id2label, label2id={v: k for k, v in id2label.items()}, **args)
    torch.manual_seed(seed)
    model = getattr(transformers, model_name)(config).eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):  # a signal that survives the tiny depth
                torch.nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.1, 0.1)
            if hasattr(m, "layer_scale_parameter") and m.layer_scale_parameter is not None:
                m.layer_scale_parameter.uniform_(0.5, 1.0)
            if type(m).__name__.endswith("GRN"):
                m.weight.uniform_(-0.5, 0.5)
                m.bias.uniform_(-0.1, 0.1)
    return model


def processor(model_type: str, image_size: int = 32, resample: int = 2, crop_pct: float | None = None):
    import transformers

    name = CLASSES[model_type][2]
    kw = dict(image_mean=MEAN, image_std=STD, resample=resample)
    if name == "ConvNextImageProcessor":
        kw.update(size={"shortest_edge": image_size}, crop_pct=crop_pct if crop_pct is not None else 1.0)
    else:
        kw.update(size={"height": image_size, "width": image_size}, do_center_crop=False)
    return getattr(transformers, name)(**kw)


def write_hf_folder(folder, model_type: str, num_labels: int = 5, seed: int = 0, image_size: int = 32,
                    model=None, labels=None, **overrides) -> Path:
    folder = Path(folder)
    model = model if model is not None else make_hf_model(model_type, num_labels, seed, image_size, labels,
                                                          **overrides)
    model.save_pretrained(folder)
    processor(model_type, image_size).save_pretrained(folder)
    return folder
