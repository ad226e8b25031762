"""The API edge: where what a user writes becomes what the rooms below take.

One spec grammar everywhere: a clone delta is a file path, bytes, a CloneDelta or ``hf://ORG/NAME[@REV]``; a model
is a folder or ``hf://ORG/NAME[@REV]``. Here, and only here, ``hf://`` specs are resolved through the Hub cache
(pinned to a commit) into folders and CloneDeltas; :mod:`pnc_pack.builder` and :mod:`pnc_pack.clone` then work on
folders alone. ``pnc_pack.<name>`` and every command of the CLI go through these functions.

- :mod:`pnc_pack.api.specs` (torch-free): ``open_delta``, ``delta_bytes``, ``resolve_model``, ``locate_models``,
  ``verify``, ``pull``;
- :mod:`pnc_pack.api.build`: ``build_clone``, ``build_multi``, ``add_source``, ``select_source``,
  ``build_selected`` (target first, as everywhere);
- :mod:`pnc_pack.api.model`: ``apply`` and :class:`ClonedModel` (``from_pretrained``, ``push_to_hub``).
"""
