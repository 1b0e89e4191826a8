"""Strict, by-name loading of official METER Lightning checkpoints into :class:`MeterModel`.

Every key of the file is either loaded or matches :data:`KNOWN_UNUSED_KEYS`; missing
keys, unexpected keys and shape mismatches raise one :class:`WeightsError` that lists
the first offenders. Two documented shape adaptations:

- ``vit_model.visual.positional_embedding`` of another resolution (e.g. 576 px VQA,
  224 px pretrain) is resized to the model's ``image_size`` (bicubic grid, CLS row kept);
- ``token_type_embeddings.weight`` with more than 2 rows (NLVR2: a third row for the
  second image) keeps rows 0 (text) and 1 (image).
"""

from __future__ import annotations

import logging
import pickle
import re
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from vlm_brain.models.base import WeightsError
from vlm_brain.models.meter_model import (
    MeterConfig,
    MeterModel,
    resize_position_embedding,
)

logger = logging.getLogger(__name__)

# (regular expression matched against the whole key, why the key is not used)
KNOWN_UNUSED_KEYS: tuple[tuple[str, str], ...] = (
    (r"vit_model\.(token_embedding\.weight|positional_embedding|ln_final\.(weight|bias))",
     "CLIP text-side parameters that METER's build_model keeps but never uses"),
    (r"text_transformer\.pooler\.dense\.(weight|bias)", "RoBERTa pooler (METER pools after fusion)"),
    (r"text_transformer\.embeddings\.(position_ids|token_type_ids)", "transformers buffers (recomputed)"),
    (r"mlm_score\..+", "masked-language-modelling head"),
    (r"itm_score\..+", "image-text-matching head"),
    (r"(vqa_classifier|nlvr2_classifier|snli_classifier|rank_output)\..+", "fine-tuned task heads"),
    (r"(train|val|dev|test)_[a-z0-9]+_(accuracy|loss|score)\.[a-z_]+", "training metric states"),
)
_UNUSED = [re.compile(pattern) for pattern, _ in KNOWN_UNUSED_KEYS]

POSITION_KEY = "vit_model.visual.positional_embedding"
TOKEN_TYPE_KEY = "token_type_embeddings.weight"
_SHOWN = 5


def is_known_unused(key: str) -> bool:
    return any(p.fullmatch(key) for p in _UNUSED)


# ------------------------------------------------------------------------ reading


class _Unresolved(dict):
    """Stand-in for a class of the checkpoint's pickle that cannot be imported here
    (e.g. pytorch_lightning's AttributeDict in ``hyper_parameters``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        try:
            super().__init__(*args, **kwargs)
        except (TypeError, ValueError):
            self["_args"] = args

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, dict):
            self.__dict__.update(state)
        else:
            self.__dict__["_state"] = state


class _TolerantUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        try:
            return super().find_class(module, name)
        except (ImportError, AttributeError):
            return type(name, (_Unresolved,), {"__module__": module, "__qualname__": name})


# a module-like object for torch.load(pickle_module=...)
_TOLERANT_PICKLE = types.SimpleNamespace(
    __name__="vlm_brain_tolerant_pickle",
    Unpickler=_TolerantUnpickler,
    load=lambda f, **kw: _TolerantUnpickler(f, **kw).load(),
)


def read_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(state dict, hyper_parameters) of a Lightning ``.ckpt`` (or a bare state dict file).

    Tries ``torch.load(weights_only=True)`` first; a file whose ``hyper_parameters``
    pickle classes that loader refuses (e.g. Lightning's AttributeDict) is re-read with
    ``weights_only=False`` and an unpickler that replaces classes it cannot import by
    inert stand-ins. That second route runs the file's pickle: use trusted files only.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(
            f"meter: checkpoint {path} not found. Download the official METER checkpoint"
            " (GitHub releases of zdou0830/METER, e.g. meter_clip16_288_roberta_pretrain.ckpt)"
            " and set `checkpoint` to its path."
        )
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        logger.info("meter: %s needs the full unpickler (%s); reading it with weights_only=False"
                    " (trusted file) and stand-ins for classes that cannot be imported",
                    path.name, str(exc).splitlines()[0][:120])
        try:
            obj = torch.load(path, map_location="cpu", weights_only=False, pickle_module=_TOLERANT_PICKLE)
        except Exception as exc2:  # noqa: BLE001 - any reader failure is a bad file
            raise _unreadable(path, exc2) from exc2
    except Exception as exc:  # noqa: BLE001 - truncated zip, not a torch file, ...
        raise _unreadable(path, exc) from exc
    if isinstance(obj, Mapping) and "state_dict" in obj:
        state_dict, hparams = obj["state_dict"], obj.get("hyper_parameters") or {}
    elif isinstance(obj, Mapping) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        logger.info("meter: %s is a bare state dict (no Lightning 'state_dict' entry)", path.name)
        state_dict, hparams = obj, {}
    else:
        raise WeightsError(f"meter: {path} holds no state dict (a Lightning checkpoint has 'state_dict');"
                           f" top-level entries: {list(obj)[:8] if isinstance(obj, Mapping) else type(obj).__name__}")
    bad = [k for k, v in state_dict.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise WeightsError(f"meter: {path}: state dict entries that are not tensors: {bad[:_SHOWN]}")
    return dict(state_dict), dict(hparams) if isinstance(hparams, Mapping) else {}


def _unreadable(path: Path, exc: Exception) -> WeightsError:
    return WeightsError(
        f"meter: cannot read {path} as a PyTorch checkpoint ({type(exc).__name__}:"
        f" {' '.join(str(exc).split())[:200]}); the file may be truncated or not a .ckpt."
    )


def checkpoint_image_size(hparams: Mapping[str, Any]) -> int | None:
    config = hparams.get("config") if isinstance(hparams, Mapping) else None
    if isinstance(config, Mapping) and isinstance(config.get("image_size"), int):
        return config["image_size"]
    return None


# ---------------------------------------------------------------------- validating


def expected_shapes(config: MeterConfig) -> dict[str, torch.Size]:
    """Key -> shape of every tensor :class:`MeterModel` needs (built on the meta device)."""
    with torch.device("meta"):
        model = MeterModel(config)
    return {k: v.shape for k, v in model.state_dict().items()}


def prepare_state_dict(state_dict: Mapping[str, torch.Tensor], config: MeterConfig,
                       source: str = "checkpoint") -> dict[str, torch.Tensor]:
    """The checkpoint's tensors, checked against the model and adapted, ready for
    ``load_state_dict(strict=True)``; raises one :class:`WeightsError` listing the problems."""
    expected = expected_shapes(config)
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected and not is_known_unused(k)]
    mismatched, out, notes = [], {}, []
    for key, shape in expected.items():
        if key not in state_dict:
            continue
        t = state_dict[key]
        if key == POSITION_KEY and t.dim() == 2 and t.shape[1] == shape[1] and t.shape != shape:
            try:
                t = resize_position_embedding(t, config.grid)
                notes.append(f"position embeddings resized from {state_dict[key].shape[0]} to {shape[0]} rows"
                             f" ({config.image_size} px)")
            except ValueError:
                pass
        elif key == TOKEN_TYPE_KEY and t.dim() == 2 and t.shape[1] == shape[1] and t.shape[0] > shape[0]:
            notes.append(f"token_type_embeddings: {t.shape[0]} rows, rows 0 (text) and 1 (image) used")
            t = t[: shape[0]]
        if t.shape != shape:
            mismatched.append(f"{key}: file {list(t.shape)} vs model {list(shape)}")
            continue
        out[key] = t.float() if t.is_floating_point() else t
    if missing or unexpected or mismatched:
        raise WeightsError(_mismatch_message(source, state_dict, missing, unexpected, mismatched))
    ignored = [k for k in state_dict if k not in expected]
    logger.info("meter: %s: %d tensors loaded, %d known-unused ignored%s", source, len(out), len(ignored),
                "".join(f"; {n}" for n in notes))
    return out


def _mismatch_message(source: str, state_dict: Mapping[str, torch.Tensor], missing: list[str],
                      unexpected: list[str], mismatched: list[str]) -> str:
    parts = []
    for label, items in (("missing", missing), ("unexpected", unexpected), ("shape mismatches", mismatched)):
        if items:
            more = f", ... (+{len(items) - _SHOWN})" if len(items) > _SHOWN else ""
            parts.append(f"{len(items)} {label}: {', '.join(items[:_SHOWN])}{more}")
    keys = list(state_dict)
    if any(k.startswith(("vit_model.layers.", "vit_model.patch_embed.")) for k in keys):
        hint = " It looks like a Swin-based METER checkpoint; only METER CLIP-ViT-B/16 + RoBERTa is supported."
    elif keys and not any(k.startswith(("text_transformer.", "cross_modal_")) for k in keys):
        hint = " It does not look like a METER checkpoint at all (e.g. a plain RoBERTa/BERT or CLIP state dict)."
    else:
        hint = " Expected the METER CLIP16-RoBERTa layout of docs/meter.md (a truncated or differently sized model?)."
    return f"meter: {source} does not match METER CLIP-ViT-B/16 + RoBERTa: {'; '.join(parts)}.{hint}"


def load_meter(path: str | Path, config: MeterConfig | None = None) -> tuple[MeterModel, dict[str, Any]]:
    """A :class:`MeterModel` with the weights of an official checkpoint, and its hyper_parameters."""
    config = config or MeterConfig()
    state_dict, hparams = read_checkpoint(path)
    trained_at = checkpoint_image_size(hparams)
    if trained_at is not None and trained_at != config.image_size:
        logger.info("meter: %s was trained at %d px; running at %d px", Path(path).name, trained_at,
                    config.image_size)
    prepared = prepare_state_dict(state_dict, config, str(path))
    with torch.device("meta"):
        model = MeterModel(config)
    model.load_state_dict(prepared, strict=True, assign=True)
    return model.eval(), hparams
