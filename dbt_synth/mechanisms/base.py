"""The one interface every DP generator implements."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from dbt_synth.accounting import PrivacyAccountant
from dbt_synth.encoding import PriorCounts
from dbt_synth.noise import NoiseSource

Progress = Callable[[str], None]


@dataclass(frozen=True)
class CodeCounts:
    """Exact 1- and 2-way counts of encoded columns: `singles[j]` per code of column j,
    `pairs[(a, b)]` (a < b) shaped (cardinality of a, cardinality of b).

    Counted on the driver from codes (`of_codes`), or by the engine over the whole source
    (`dbt_synth.pushdown_marginals`): inputs to DP releases only, never written or logged.
    """

    cardinalities: tuple[int, ...]
    singles: tuple[np.ndarray, ...]
    pairs: dict[tuple[int, int], np.ndarray]

    @classmethod
    def of_codes(cls, codes: np.ndarray, cardinalities: tuple[int, ...]) -> CodeCounts:
        cards = cardinalities
        singles = tuple(
            np.bincount(codes[:, j], minlength=cards[j]).astype(float) for j in range(len(cards))
        )
        pairs = {
            (a, b): np.bincount(
                codes[:, a].astype(np.int64) * cards[b] + codes[:, b], minlength=cards[a] * cards[b]
            )
            .reshape(cards[a], cards[b])
            .astype(float)
            for a in range(len(cards))
            for b in range(a + 1, len(cards))
        }
        return cls(cardinalities, singles, pairs)

    @property
    def rows(self) -> int:
        return int(self.singles[0].sum()) if self.singles else 0

    def scaled(self, rate: float) -> CodeCounts:
        """Every count times `rate` (< 1), rounded to the nearest integer: the counts a Poisson
        sample at that rate holds in expectation, without its sampling error.

        One row more or less moves a count by `rate` ≤ 1 before rounding, so by at most 1 after
        (|round(x) − x| ≤ ½ on both sides): each marginal keeps sensitivity 1, and a release of
        these counts is accounted exactly as the same release of the sample's.
        """
        if rate >= 1.0:
            return self

        def scale(counts: np.ndarray) -> np.ndarray:
            return np.floor(counts * rate + 0.5)

        return CodeCounts(
            self.cardinalities,
            tuple(scale(s) for s in self.singles),
            {pair: scale(joint) for pair, joint in self.pairs.items()},
        )


@dataclass(frozen=True)
class EncodedTable:
    """The modelled columns as integer codes, one column of `codes` per source column; or,
    where the engine counted them (`counts`, and `codes` None), only their exact 1- and 2-way
    counts over the whole source, for a mechanism that fits from those (`fits_from_counts`).

    `priors` are noisy 1-way counts already paid for while learning domains (or None).
    """

    codes: np.ndarray | None
    cardinalities: tuple[int, ...]
    names: tuple[str, ...]
    priors: tuple[PriorCounts | None, ...]
    counts: CodeCounts | None = None

    @property
    def rows(self) -> int:
        if self.codes is None:
            return self.counts.rows if self.counts is not None else 0
        return int(self.codes.shape[0])

    def marginal_counts(self) -> CodeCounts:
        """The exact 1- and 2-way counts: the engine's, or counted from the codes."""
        if self.counts is not None:
            return self.counts
        if self.codes is None:
            raise ValueError("an EncodedTable needs codes or counts")
        return CodeCounts.of_codes(self.codes, self.cardinalities)


@dataclass(frozen=True)
class FitInputs:
    """What a fit gets: the encoded rows, the accountant to spend on, the DP row count (the
    only size a schedule may read), the noise every draw comes from, and a progress line."""

    data: EncodedTable
    accountant: PrivacyAccountant
    rows_estimate: float
    noise: NoiseSource
    progress: Progress


class Mechanism(ABC):
    """A DP generator over encoded columns.

    `fit` spends the accountant's remaining budget (never more: the accountant refuses any
    release past the target) and keeps only noisy statistics or privately trained weights; its
    every random draw comes from `noise` (OS entropy: `dbt_synth.noise`), never from the seed;
    `sample` is post-processing of those and touches no data. Both run on one torch thread
    (`one_torch_thread`); an implementation writes `_fit` and `_sample`.
    """

    name: ClassVar[str]
    #: Whether `fit` reads its data only through `EncodedTable.marginal_counts`, so that an
    #: engine may count them over the whole source instead of the driver encoding a sample.
    fits_from_counts: ClassVar[bool] = False

    def fit(
        self,
        data: EncodedTable,
        accountant: PrivacyAccountant,
        *,
        rows_estimate: float,
        noise: NoiseSource,
        progress: Progress,
    ) -> None:
        with one_torch_thread():
            self._fit(FitInputs(data, accountant, rows_estimate, noise, progress))

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """`n` rows of codes, shaped (n, columns)."""
        with one_torch_thread():
            return self._sample(n, rng)

    @abstractmethod
    def _fit(self, fit: FitInputs) -> None: ...

    @abstractmethod
    def _sample(self, n: int, rng: np.random.Generator) -> np.ndarray: ...


_THREADS_LOCK = threading.Lock()
_THREADS_USERS = [0, 0]  # fits in progress, torch's thread count before the first of them


@contextmanager
def one_torch_thread() -> Iterator[None]:
    """The generators' tensors are small: one thread avoids the synchronisation that dominates
    small ops (badly so on a busy machine), and makes results independent of the thread count.

    Twins fitted in parallel dbt threads share torch's global setting: the count is restored only
    when the last of them finishes.
    """
    import torch

    with _THREADS_LOCK:
        if _THREADS_USERS[0] == 0:
            _THREADS_USERS[1] = torch.get_num_threads()
            torch.set_num_threads(1)
        _THREADS_USERS[0] += 1
    try:
        yield
    finally:
        with _THREADS_LOCK:
            _THREADS_USERS[0] -= 1
            if _THREADS_USERS[0] == 0:
                torch.set_num_threads(_THREADS_USERS[1])
