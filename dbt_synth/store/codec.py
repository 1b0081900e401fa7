"""A fitted model as JSON plus raw arrays: an explicit, versioned format with no pickle.

The model store lives in a warehouse table that others may be able to write to, so reading a
model must never execute code chosen by whoever wrote the row. `encode` turns a fitted
`TwinGenerator`'s parts into a JSON tree and a dict of numeric arrays (saved as `.npz`, loaded
with `allow_pickle=False`); `decode` rebuilds them. The JSON names classes only from the
allowlists below (`_OBJECTS`, `_DATACLASSES`, `_ENUMS`): a name outside them is refused, and
objects are rebuilt by setting their stored attributes, never by calling anything they name.

Each stored class declares which attributes it stores and which are transient (rebuilt empty on
load). An attribute that is neither stops the save: a new attribute must be classified here,
as a DP release or public fact (stored) or as scratch state (transient), so that nothing read
from real data slips into the store unnoticed (e.g. DP-SGD's realised batch sizes, which sum to
about the true row count, are transient).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import io
import json
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np
import torch

from dbt_synth.domains.categories import CategoryDomain
from dbt_synth.domains.numeric import NumericDomain
from dbt_synth.domains.text import TextDomain
from dbt_synth.encoding import (
    CategoryModel,
    KeyModel,
    NullModel,
    NumericModel,
    PriorCounts,
    TextModel,
)
from dbt_synth.errors import SynthError
from dbt_synth.keys import IdForm, StringKeyModel
from dbt_synth.mechanisms.dense import DenseModel
from dbt_synth.mechanisms.dpsgd import DPSGDMechanism, MadeNet, TrainingPlan
from dbt_synth.mechanisms.marginal import MarginalMechanism
from dbt_synth.mechanisms.mixture import MixtureModel
from dbt_synth.pipeline import ColumnReport
from dbt_synth.relational.cardinality import Cardinality
from dbt_synth.relational.child import ChildFit
from dbt_synth.relational.keys import ForeignKey, KeyMode, KeyOrigin
from dbt_synth.relational.plan import KeyPlan
from dbt_synth.schema import ColumnKind, ColumnSpec, TableSchema
from dbt_synth.tails import FormatTail, GeneratedModel, HeadTailModel, RoleTail, TextTail

FORMAT_VERSION = 1


class StoreError(SynthError):
    """A model cannot be stored, or a stored row cannot be read back."""


@dataclass(frozen=True)
class _Stored:
    """How one class is stored: the attributes kept, and the transient ones with their reset."""

    kept: frozenset[str]
    transient: dict[str, Any] = field(default_factory=dict)


_CATEGORY_KEPT = frozenset(
    {
        "spec",
        "domain",
        "_modelled",
        "_tail",
        "_index",
        "_null_code",
        "_other_code",
        "cardinality",
        "prior",
    }
)
_OBJECTS: dict[str, tuple[type, _Stored]] = {
    "NumericModel": (
        NumericModel,
        _Stored(
            frozenset({"spec", "domain", "cardinality", "prior", "_special_code", "_inner_edges"})
        ),
    ),
    "CategoryModel": (CategoryModel, _Stored(_CATEGORY_KEPT)),
    "TextModel": (TextModel, _Stored(frozenset({"spec", "domain", "unique"}), {"_issued": set})),
    "KeyModel": (KeyModel, _Stored(frozenset({"spec", "form", "declared_max"}))),
    # roles (tails.py, keys.py): head+tail columns, generated columns, string keys.
    "HeadTailModel": (HeadTailModel, _Stored(_CATEGORY_KEPT | {"tail", "unrevealed"})),
    "GeneratedModel": (GeneratedModel, _Stored(frozenset({"spec", "tail"}))),
    "StringKeyModel": (
        StringKeyModel,
        _Stored(frozenset({"spec", "pattern", "domain", "form"}), {"_issued": set}),
    ),
    "NullModel": (NullModel, _Stored(frozenset({"spec"}))),
    "MarginalMechanism": (
        MarginalMechanism,
        _Stored(
            frozenset(
                {
                    "components",
                    "rounds_per_column",
                    "init_steps",
                    "round_steps",
                    "learning_rate",
                    "max_rounds",
                    "dense_cells",
                    "dense_init_steps",
                    "dense_round_steps",
                    "dense_learning_rate",
                    "_model",
                    "rounds",
                }
            )
        ),
    ),
    "MixtureModel": (
        MixtureModel,
        _Stored(
            frozenset(
                {
                    "cardinalities",
                    "width",
                    "offsets",
                    "_pad",
                    "_flat_index",
                    "logits",
                    "weight_logits",
                }
            )
        ),
    ),
    "DenseModel": (
        DenseModel,
        _Stored(frozenset({"cardinalities", "offsets", "log_probs"})),
    ),
    "DPSGDMechanism": (
        DPSGDMechanism,
        _Stored(
            frozenset(
                {
                    "hidden",
                    "epochs",
                    "batch_size",
                    "max_sample_rate",
                    "clip",
                    "learning_rate",
                    "anchor_share",
                    "ema",
                    "plan",
                    "_net",
                }
            ),
            # Realised Poisson batch sizes sum to about the true row count: never stored.
            {"batch_sizes": list},
        ),
    ),
    "MadeNet": (
        MadeNet,
        _Stored(
            frozenset(
                {
                    "cardinalities",
                    "offsets",
                    "column_of",
                    "degree",
                    "in_mask",
                    "out_mask",
                    "direct_mask",
                    "direct_inputs",
                    "spans",
                    "embed",
                    "hidden_bias",
                    "out",
                    "direct",
                    "out_bias",
                }
            )
        ),
    ),
}
_DATACLASSES: dict[str, type] = {
    cls.__name__: cls
    for cls in (
        ColumnSpec,
        TableSchema,
        NumericDomain,
        CategoryDomain,
        TextDomain,
        PriorCounts,
        TrainingPlan,
        ColumnReport,
        RoleTail,
        FormatTail,
        TextTail,
        # child twins (relational/): key plans and the DP children-per-parent histograms.
        ChildFit,
        KeyPlan,
        ForeignKey,
        Cardinality,
    )
}
_ENUMS: dict[str, type[enum.Enum]] = {
    cls.__name__: cls for cls in (ColumnKind, IdForm, KeyMode, KeyOrigin)
}
_OBJECT_NAMES = {cls: name for name, (cls, _) in _OBJECTS.items()}


def encode(value: Any) -> tuple[str, bytes]:
    """`value` (a tree of allowlisted objects) as a JSON document and `.npz` bytes."""
    arrays: dict[str, np.ndarray] = {}
    tree = _Encoder(arrays).node(value)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return json.dumps({"format": FORMAT_VERSION, "tree": tree}), buffer.getvalue()


def decode(document: str, blob: bytes) -> Any:
    """The value `encode` stored; refuses other formats, unknown classes and pickled arrays."""
    try:
        parsed = json.loads(document)
        if parsed.get("format") != FORMAT_VERSION:
            raise StoreError(
                f"stored model format {parsed.get('format')!r} is not {FORMAT_VERSION}",
                fix="refit the twin (--vars '{synth_refit: true}')",
            )
        with np.load(io.BytesIO(blob), allow_pickle=False) as loaded:
            arrays = {name: loaded[name] for name in loaded.files}
        return _Decoder(arrays).node(parsed["tree"])
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise StoreError(
            f"stored model cannot be read ({type(error).__name__}: {error})",
            fix="refit the twin (--vars '{synth_refit: true}'); do not edit synth_models by hand",
        ) from None


class _Encoder:
    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        self.arrays = arrays

    def array(self, values: np.ndarray) -> str:
        key = f"a{len(self.arrays)}"
        self.arrays[key] = values
        return key

    def node(self, value: Any) -> Any:
        if value is None or isinstance(value, bool | str):
            return value
        if isinstance(value, enum.Enum):
            return self._enum(value)
        if isinstance(value, int) and type(value) is int:
            return value
        if isinstance(value, float) and type(value) is float:
            return value if np.isfinite(value) else {"$": "float", "v": repr(value)}
        if isinstance(value, np.generic):
            return {"$": "scalar", "dtype": value.dtype.str, "v": self.node(value.item())}
        if isinstance(value, np.ndarray):
            return self._ndarray(value)
        if isinstance(value, torch.Tensor):
            array = value.detach().cpu().numpy()
            return {"$": "tensor", "k": self.array(array), "grad": value.requires_grad}
        if isinstance(value, tuple | list | set | frozenset):
            kind = {tuple: "tuple", list: "list", set: "set", frozenset: "frozenset"}[type(value)]
            return {"$": kind, "v": [self.node(v) for v in value]}
        if isinstance(value, dict):
            return {"$": "dict", "v": [[self.node(k), self.node(v)] for k, v in value.items()]}
        scalar = _scalar(value)
        if scalar is not None:
            return scalar
        if dataclasses.is_dataclass(value) and type(value).__name__ in _DATACLASSES:
            fields = {f.name: self.node(getattr(value, f.name)) for f in dataclasses.fields(value)}
            return {"$": "dataclass", "type": type(value).__name__, "v": fields}
        return self._object(value)

    def _enum(self, value: enum.Enum) -> Any:
        name = type(value).__name__
        if _ENUMS.get(name) is not type(value):
            raise StoreError(f"cannot store {name}", fix=_CLASSIFY)
        return {"$": "enum", "type": name, "v": value.value}

    def _ndarray(self, value: np.ndarray) -> Any:
        if value.dtype.hasobject:
            items = [self.node(v) for v in value.ravel().tolist()]
            return {"$": "objects", "shape": list(value.shape), "v": items}
        return {"$": "ndarray", "k": self.array(value)}

    def _object(self, value: Any) -> Any:
        name = _OBJECT_NAMES.get(type(value))
        if name is None:
            raise StoreError(
                f"cannot store an object of type {type(value).__name__}", fix=_CLASSIFY
            )
        stored = _OBJECTS[name][1]
        unknown = sorted(set(vars(value)) - stored.kept - set(stored.transient))
        if unknown:
            raise StoreError(
                f"{name} has attribute(s) {unknown} the model store does not know", fix=_CLASSIFY
            )
        kept = {k: self.node(v) for k, v in vars(value).items() if k in stored.kept}
        return {"$": "object", "type": name, "v": kept}


_CLASSIFY = (
    "classify it in dbt_synth/store/codec.py: stored if it is a DP release or public, transient "
    "if it is scratch state (never anything read from real data)"
)


def _scalar(value: Any) -> dict[str, Any] | None:
    """Python values a category domain may hold beyond JSON's own."""
    if isinstance(value, dt.datetime):
        return {"$": "datetime", "v": value.isoformat()}
    if isinstance(value, dt.date):
        return {"$": "date", "v": value.isoformat()}
    if isinstance(value, dt.time):
        return {"$": "time", "v": value.isoformat()}
    if isinstance(value, dt.timedelta):
        return {"$": "timedelta", "v": [value.days, value.seconds, value.microseconds]}
    if isinstance(value, Decimal):
        return {"$": "decimal", "v": str(value)}
    if isinstance(value, uuid.UUID):
        return {"$": "uuid", "v": str(value)}
    if isinstance(value, bytes):
        return {"$": "bytes", "v": value.hex()}
    return None


_SCALARS = {
    "datetime": dt.datetime.fromisoformat,
    "date": dt.date.fromisoformat,
    "time": dt.time.fromisoformat,
    "timedelta": lambda v: dt.timedelta(days=v[0], seconds=v[1], microseconds=v[2]),
    "decimal": Decimal,
    "uuid": uuid.UUID,
    "bytes": bytes.fromhex,
    "float": float,
}
_COLLECTIONS = {"tuple": tuple, "list": list, "set": set, "frozenset": frozenset}


class _Decoder:
    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        self.arrays = arrays

    def node(self, value: Any) -> Any:
        if not isinstance(value, dict):
            if isinstance(value, list):
                raise StoreError("untagged list in a stored model", fix=_REFIT)
            return value
        kind = value["$"]
        if kind in _COLLECTIONS:
            return _COLLECTIONS[kind](self.node(v) for v in value["v"])
        if kind == "dict":
            return {self.node(k): self.node(v) for k, v in value["v"]}
        if kind in _SCALARS:
            return _SCALARS[kind](value["v"])
        if kind == "ndarray":
            return self.arrays[value["k"]]
        if kind == "objects":
            items = [self.node(v) for v in value["v"]]
            array = np.empty(len(items), dtype=object)
            array[:] = items
            return array.reshape(value["shape"])
        if kind == "scalar":
            return np.dtype(value["dtype"]).type(self.node(value["v"]))
        if kind == "tensor":
            tensor = torch.from_numpy(np.array(self.arrays[value["k"]]))
            return tensor.requires_grad_(bool(value["grad"]))
        if kind == "enum":
            return _ENUMS[value["type"]](value["v"])
        if kind == "dataclass":
            cls = _DATACLASSES[value["type"]]
            return cls(**{k: self.node(v) for k, v in value["v"].items()})
        if kind == "object":
            return self._object(value)
        raise StoreError(f"unknown stored kind {kind!r}", fix=_REFIT)

    def _object(self, value: dict[str, Any]) -> Any:
        cls, stored = _OBJECTS[value["type"]]
        attributes = value["v"]
        unknown = set(attributes) - stored.kept
        if unknown:
            raise StoreError(f"stored {value['type']} has unknown attributes", fix=_REFIT)
        instance = cls.__new__(cls)
        for name, node in attributes.items():
            setattr(instance, name, self.node(node))
        for name, reset in stored.transient.items():
            setattr(instance, name, reset())
        return instance


_REFIT = "refit the twin (--vars '{synth_refit: true}'); do not edit synth_models by hand"
