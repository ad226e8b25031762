"""An hf-* model sees images as transformers' own image processor (its Pillow backend) prepares them: the resize and
RGB of ``prepare_images`` then block 0's crop, rescale and normalisation, compared on real handwritten digits
(scikit-learn's 8x8 grayscale scans, as uint8: upscaled to each model's size, and blown up 6x by pixel repetition to
48x48 then downscaled) with the processor's ``pixel_values``. Stated tolerance: 1e-5 absolute on the normalised
pixels (the resize is Pillow's own, bit for bit; the rest is float32 arithmetic in another order), and the model's
logits within 1e-4 of its logits on the processor's pixels."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.skipif(importlib.util.find_spec("transformers") is None, reason="needs pnc-pack[hf]")

TOL = 1e-5
# (model type, processor class, its arguments): shortest edge + crop_pct (resize 36, crop 32, bilinear), a square
# size with bicubic, EfficientNet's nearest filter with rescale offset and include_top (std divided twice)
CASES = [
    ("convnext", "ConvNextImageProcessor", dict(size={"shortest_edge": 32}, crop_pct=0.875, resample=2)),
    ("mobilenet_v2", "MobileNetV2ImageProcessor", dict(size={"height": 40, "width": 40}, do_center_crop=False,
                                                       resample=3)),
    ("resnet", "ConvNextImageProcessor", dict(size={"shortest_edge": 24}, crop_pct=1.0, resample=1)),
    ("efficientnet", "EfficientNetImageProcessor", dict(size={"height": 32, "width": 32}, resample=0,
                                                        rescale_offset=True, include_top=True)),
]
MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


@pytest.fixture(scope="module", params=["8x8", "48x48"])
def digits(request):
    from pnc_pack.data.packaged import load_digits_dataset

    X = load_digits_dataset().test[0][:24].mul(255).round().to(torch.uint8)
    return X if request.param == "8x8" else X.repeat_interleave(6, 2).repeat_interleave(6, 3)


@pytest.mark.parametrize("mt,proc,kw", CASES, ids=[c[0] for c in CASES])
def test_prepare_images_equals_transformers_processor(tmp_path, digits, mt, proc, kw):
    import transformers
    from PIL import Image

    from pnc_pack.zoo.pretrained import load_pretrained
    from tests.hf_models import make_hf_model

    model = make_hf_model(mt, num_labels=3, seed=4)
    model.save_pretrained(tmp_path)
    processor = getattr(transformers, proc)(image_mean=MEAN, image_std=STD, **kw)
    processor.save_pretrained(tmp_path)
    ours, _ = load_pretrained(tmp_path)
    pil = [Image.fromarray(a[0].numpy(), "L").convert("RGB") for a in digits]
    want = processor(pil, return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        for X in (digits, digits.float() / 255):  # uint8 as decoded, or float on the same grid
            got = ours.preprocess(ours.prepare_images(X))
            assert got.shape == want.shape
            diff = float((got - want).abs().max())
            assert diff <= TOL, (mt, diff)
        logits = ours(ours.prepare_images(digits))
        assert torch.allclose(logits, ours.forward_hf(want), atol=1e-4, rtol=1e-4)
    # a change of the filter is seen (the comparison can fail)
    if kw["resample"] != 0:
        alt = ours.preprocess(torch.from_numpy(np.stack([np.asarray(
            Image.fromarray(a[0].numpy(), "L").convert("RGB").resize(tuple(ours.prepare_images(digits).shape[-2:]),
                                                                      resample=0)) for a in digits])).permute(
            0, 3, 1, 2).float() / 255)
        assert float((alt - want).abs().max()) > 100 * TOL
