"""A stored fit: everything needed to sample a twin again, and nothing that is not DP or public.

A fit produces the column models (DP domains and encoders), the fitted mechanism (the mixture
estimator of the marginal mechanism, or the DP-SGD network's weights) and the DP row count.
Sampling from them is post-processing: a twin rebuilt from a stored fit costs ε = 0. The row
of `synth_models` holding them is keyed by the twin and by a fingerprint of its config and the
source's schema — never of the data, which would let anyone test a guessed dataset.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pyarrow as pa

from dbt_synth.conditioning import constraints_of, fresh_keys
from dbt_synth.config import SynthConfig
from dbt_synth.generation import TwinGenerator
from dbt_synth.noise import sampling_seed
from dbt_synth.pipeline import SynthResult
from dbt_synth.relational.child import ChildFit
from dbt_synth.schema import TableSchema
from dbt_synth.store.codec import FORMAT_VERSION, decode, encode

# Config keys that only shape sampling or bookkeeping: changing them resamples, never refits.
SAMPLING_KEYS = frozenset(
    {
        "seed",
        "rows",
        "verbose",
        "ledger_table",
        "ledger_schema",
        "model_table",
        "max_total_epsilon",
        "refit",
    }
)

COLUMNS = pa.schema(
    [
        ("fit_id", pa.string()),
        ("model", pa.string()),
        ("source", pa.string()),
        ("fingerprint", pa.string()),
        ("format_version", pa.int32()),
        ("created_at", pa.timestamp("us")),
        ("epsilon", pa.float64()),
        ("document", pa.string()),
        ("arrays", pa.binary()),
    ]
)


def fingerprint(
    config: SynthConfig, schema: TableSchema, holdout: Any = None, relatives: Any = None
) -> str:
    """sha256 of what shapes a fit: the config (less `SAMPLING_KEYS`), the source's schema and
    holdout rule, for a child twin its `relatives` (relational config, discovered keys, the
    parents' names and source schemas), and the store format. Public facts only: no value of
    the data enters it."""
    settings = {
        f.name: getattr(config, f.name)
        for f in dataclasses.fields(config)
        if f.name not in SAMPLING_KEYS
    }
    shape = {
        "format": FORMAT_VERSION,
        "config": settings,
        "table": schema.table,
        "columns": [[c.name, c.sql_type, c.nullable] for c in schema.columns],
        "holdout": holdout,
        "relatives": relatives,
    }
    text = json.dumps(shape, sort_keys=True, default=_plain)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value):
        return dataclasses.asdict(value)
    if isinstance(value, set | frozenset):
        return sorted(value, key=repr)
    return repr(value)


@dataclass(frozen=True)
class StoredModel:
    """One fit as stored: its id and key, and the parts a twin is sampled from. For a child
    twin `fitted` is the fit of its joined rows and `child` what its keys are drawn from."""

    fit_id: str
    model: str
    source: str
    fingerprint: str
    created_at: datetime
    epsilon: float
    fitted: SynthResult
    child: ChildFit | None = None

    def generator(self, config: SynthConfig) -> TwinGenerator:
        """The twin's rows from this fit: `rows` and `seed` of the current config (sampling)."""
        parts = self.fitted.generator
        return TwinGenerator(
            names=parts.names,
            models=parts.models,
            mechanism=parts.mechanism,
            rows=config.rows or round(self.fitted.rows_estimate),
            seed=sampling_seed(config.seed),
            # Rules, condition and rebalance of the current config (sampling only, zero ε).
            constraints=constraints_of(config, parts.names, fresh_keys(parts.models, parts.names)),
        )

    def resampled(self, config: SynthConfig) -> SynthResult:
        """A twin sampled from this fit, as a result that spent nothing (ε = δ = 0)."""
        return dataclasses.replace(
            self.fitted,
            generator=self.generator(config),
            epsilon=0.0,
            delta=0.0,
            target_epsilon=config.epsilon,
            spends=(),
            fit_seconds=0.0,
            seed_fixed=config.seed is not None,
            noise_replayable=False,
        )

    def row(self) -> pa.Table:
        """This fit as a row of `synth_models` (JSON document + `.npz` arrays)."""
        document, arrays = encode({**_parts(self.fitted), "child": self.child})
        values = {
            "fit_id": self.fit_id,
            "model": self.model,
            "source": self.source,
            "fingerprint": self.fingerprint,
            "format_version": FORMAT_VERSION,
            "created_at": self.created_at,
            "epsilon": self.epsilon,
            "document": document,
            "arrays": arrays,
        }
        return pa.Table.from_pylist([values], schema=COLUMNS)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> StoredModel:
        parts = decode(row["document"], row["arrays"])
        fitted = SynthResult(
            generator=TwinGenerator(
                names=parts["names"],
                models=parts["models"],
                mechanism=parts["mechanism"],
                rows=0,
                seed=0,
            ),
            schema=parts["schema"],
            mechanism=parts["mechanism_name"],
            epsilon=float(row["epsilon"]),
            delta=parts["delta"],
            target_epsilon=parts["target_epsilon"],
            rows_estimate=parts["rows_estimate"],
            sample_rate=parts["sample_rate"],
            spends=(),
            columns=parts["columns"],
            fit_seconds=0.0,
        )
        return cls(
            fit_id=row["fit_id"],
            model=row["model"],
            source=row["source"],
            fingerprint=row["fingerprint"],
            created_at=row["created_at"],
            epsilon=float(row["epsilon"]),
            fitted=fitted,
            child=parts.get("child"),
        )


def _parts(result: SynthResult) -> dict[str, Any]:
    """What a resample needs: DP domains and encoders, the fitted mechanism, the DP row count,
    and the public schema. Never the spends' details or anything else from the fit's data."""
    generator = result.generator
    return {
        "names": tuple(generator.names),
        "models": tuple(generator.models),
        "mechanism": generator.mechanism,
        "mechanism_name": result.mechanism,
        "schema": result.schema,
        "columns": result.columns,
        "rows_estimate": float(result.rows_estimate),
        "sample_rate": float(result.sample_rate),
        "delta": float(result.delta),
        "target_epsilon": float(result.target_epsilon),
    }
