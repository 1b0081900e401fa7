"""The one interface every DP generator implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from dbt_synth.accounting import PrivacyAccountant
from dbt_synth.encoding import PriorCounts
from dbt_synth.noise import NoiseSource

Progress = Callable[[str], None]


@dataclass(frozen=True)
class EncodedTable:
    """The modelled columns as integer codes, one column of `codes` per source column.

    `priors` are noisy 1-way counts already paid for while learning domains (or None).
    """

    codes: np.ndarray
    cardinalities: tuple[int, ...]
    names: tuple[str, ...]
    priors: tuple[PriorCounts | None, ...]

    @property
    def rows(self) -> int:
        return int(self.codes.shape[0])


class Mechanism(ABC):
    """A DP generator over encoded columns.

    `fit` spends the accountant's remaining budget (never more: the accountant refuses any
    release past the target) and keeps only noisy statistics or privately trained weights; its
    every random draw comes from `noise` (OS entropy: `dbt_synth.noise`), never from the seed;
    `sample` is post-processing of those and touches no data.
    """

    name: ClassVar[str]

    @abstractmethod
    def fit(
        self,
        data: EncodedTable,
        accountant: PrivacyAccountant,
        *,
        rows_estimate: float,
        noise: NoiseSource,
        progress: Progress,
    ) -> None: ...

    @abstractmethod
    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """`n` rows of codes, shaped (n, columns)."""
