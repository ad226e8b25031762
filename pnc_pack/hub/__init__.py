"""pnc-pack and the Hugging Face Hub: push/pull clone deltas, publish/resolve/fetch pretrained models.

Torch-free; ``huggingface_hub`` itself is imported on first use. Configuration comes from the usual environment
variables, read at every call (HF_ENDPOINT, HF_TOKEN, HF_HOME / HF_HUB_CACHE, HF_HUB_OFFLINE,
HF_HUB_DISABLE_PROGRESS_BARS): see :mod:`pnc_pack.hub.client`.

- :func:`push` (delta -> commit sha), :func:`pull` (spec -> :class:`PulledDelta`: path, commit, delta)
- :func:`publish_model` (model folder -> commit sha), :func:`resolve_model` (spec -> ResolvedModel: folder, pinned ModelRef),
  :func:`fetch_model` / :func:`fetch_models` (pinned ref -> checked folder)
"""

from pnc_pack.hub.client import HubConflictError, HubSettings, parse_spec, settings
from pnc_pack.hub.deltas import DELTA_FILENAME, PulledDelta, pull, push
from pnc_pack.hub.models import MODEL_FILES, fetch_model, fetch_models, publish_model, resolve_model

__all__ = [
    "DELTA_FILENAME",
    "MODEL_FILES",
    "PulledDelta",
    "HubConflictError",
    "HubSettings",
    "fetch_model",
    "fetch_models",
    "parse_spec",
    "publish_model",
    "pull",
    "push",
    "resolve_model",
    "settings",
]
