"""Free text and identifiers: the twin keeps their format, never their values.

Each string is reduced to two shapes: a fine one (runs of character classes with bucketed
lengths, punctuation kept literally: `N14228` → `A1 9(5-6)`) and a coarse one (word count, length
and letter case). Both histograms get Gaussian noise and are thresholded like categories, so only
formats shared by many rows survive. New strings are drawn from the kept shapes with random
characters, so no real name, e-mail or licence number can be copied out.
"""

from __future__ import annotations

import string
from dataclasses import dataclass

import numpy as np

from dbt_synth.accounting import gaussian_sigma
from dbt_synth.domains.categories import threshold_for
from dbt_synth.domains.release import DomainRelease, ValueCounts
from dbt_synth.noise import NoiseSource

# Run lengths are bucketed so that shapes generalise: (low, high) inclusive.
RUN_BUCKETS = (
    (1, 1),
    (2, 2),
    (3, 3),
    (4, 4),
    (5, 6),
    (7, 8),
    (9, 12),
    (13, 16),
    (17, 32),
    (33, 64),
)
WORD_BUCKETS = ((1, 1), (2, 2), (3, 3), (4, 5), (6, 8), (9, 16), (17, 64))
LENGTH_BUCKETS = ((1, 4), (5, 8), (9, 16), (17, 32), (33, 64), (65, 128), (129, 512))
MAX_RUNS = 12
CASES = ("lower", "upper", "title", "mixed")

_CLASS_CHARS = {
    "A": string.ascii_uppercase,
    "a": string.ascii_lowercase,
    "9": string.digits,
    " ": " ",
    "L": "àáâãäåçèéêëìíîïñòóôõöùúûüýÀÉÖÜßøæ",
    "S": "★☆♥✓✔☀☺🙂🚀🎉",
}

# Filler for the unused cells of a character matrix; never part of a generated string.
_GAP = "\x00"
_SLICE_ROWS = 16_384
_LOWER = np.array(list(string.ascii_lowercase))
_UPPER = np.array(list(string.ascii_uppercase))

FineShape = tuple[tuple[str, int], ...]
CoarseShape = tuple[int, int, str]


@dataclass(frozen=True)
class TextDomain:
    """Kept fine and coarse shapes with their noisy counts; NULL handled as for categories."""

    fine: tuple[FineShape, ...]
    fine_counts: np.ndarray
    coarse: tuple[CoarseShape, ...]
    coarse_counts: np.ndarray
    has_null: bool
    null_count: float
    non_null_estimate: float

    def sample(
        self, n: int, rng: np.random.Generator, *, issued: set[str] | None = None
    ) -> list[str]:
        """`n` new strings in the kept formats; with `issued`, each is distinct from all in it
        (and is added to it)."""
        fine_total = float(self.fine_counts.sum())
        coarse_total = max(self.non_null_estimate - fine_total, 0.0) if len(self.coarse) else 0.0
        out = np.empty(n, dtype=object)
        if fine_total + coarse_total <= 0:
            out[:] = _from_coarse((1, 1, "lower"), n, rng)
        else:
            use_fine = rng.random(n) < fine_total / (fine_total + coarse_total)
            for rows, shapes, counts, draw in (
                (np.flatnonzero(use_fine), self.fine, self.fine_counts, _from_fine),
                (np.flatnonzero(~use_fine), self.coarse, self.coarse_counts, _from_coarse),
            ):
                picks = _pick(counts, len(rows), rng)
                for shape in np.unique(picks):
                    chosen = rows[picks == shape]
                    # Slices bound the (rows × max length) character matrices.
                    for start in range(0, len(chosen), _SLICE_ROWS):
                        part = chosen[start : start + _SLICE_ROWS]
                        out[part] = draw(shapes[shape], len(part), rng)
        strings = out.tolist()
        return _make_unique(strings, issued) if issued is not None else strings


def fine_shape(value: str) -> FineShape | None:
    """Runs of character classes with bucketed lengths; None for strings with too many runs."""
    runs: list[tuple[str, int]] = []
    for char in value:
        cls = _char_class(char)
        if runs and runs[-1][0] == cls:
            runs[-1] = (cls, runs[-1][1] + 1)
        else:
            runs.append((cls, 1))
        if len(runs) > MAX_RUNS:
            return None
    return tuple((cls, _bucket(length, RUN_BUCKETS)) for cls, length in runs)


def coarse_shape(value: str) -> CoarseShape:
    """Word count, length and letter case: what every string has, however free its text."""
    words = max(len(value.split()), 1)
    letters = [c for c in value if c.isalpha()]
    if not letters or all(c.islower() for c in letters):
        case = "lower"
    elif all(c.isupper() for c in letters):
        case = "upper"
    elif value.istitle():
        case = "title"
    else:
        case = "mixed"
    return (_bucket(words, WORD_BUCKETS), _bucket(max(len(value), 1), LENGTH_BUCKETS), case)


def dp_text_domain(counted: ValueCounts, release: DomainRelease, *, nullable: bool) -> TextDomain:
    """Spend the release's ρ on the fine and coarse shape histograms of one string column.

    Every row adds to one fine and one coarse shape (or to the NULL count), so the release has
    L2 sensitivity √2; each histogram may reveal one new shape per row, hence 2 thresholds' δ.
    """
    sensitivity = np.sqrt(2.0)
    sigma = gaussian_sigma(release.rho, sensitivity)
    release.accountant.spend_gaussian(
        "domain",
        sigma,
        sensitivity=sensitivity,
        column=release.column,
        threshold_delta=release.threshold_delta,
        detail="thresholded histograms of string formats",
    )
    threshold = threshold_for(sigma, release.threshold_delta / 2.0)
    noise = release.noise
    fine: dict[FineShape, int] = {}
    coarse: dict[CoarseShape, int] = {}
    for value, count in zip(counted.values, counted.counts, strict=True):
        text = str(value)
        shape = fine_shape(text)
        if shape is not None:
            fine[shape] = fine.get(shape, 0) + int(count)
        key = coarse_shape(text)
        coarse[key] = coarse.get(key, 0) + int(count)
    kept_fine, fine_counts = _threshold(fine, sigma, threshold, noise)
    kept_coarse, coarse_counts = _threshold(coarse, sigma, threshold, noise)
    noisy_null = float(noise.counts(counted.nulls, sigma))
    has_null = nullable and noisy_null >= threshold
    null_estimate = max(noisy_null, 0.0) if has_null else 0.0
    return TextDomain(
        kept_fine,
        fine_counts,
        kept_coarse,
        coarse_counts,
        bool(has_null),
        null_estimate,
        max(release.rows_estimate - null_estimate, 0.0),
    )


def _threshold(histogram: dict, sigma: float, threshold: float, noise: NoiseSource):
    keys = sorted(histogram, key=repr)
    noisy = noise.counts(np.array([histogram[k] for k in keys], dtype=float), sigma)
    keep = noisy >= threshold
    return tuple(k for k, kept in zip(keys, keep, strict=True) if kept), noisy[keep]


def _char_class(char: str) -> str:
    if char in string.ascii_uppercase:
        return "A"
    if char in string.ascii_lowercase:
        return "a"
    if char in string.digits:
        return "9"
    if char.isspace():
        return " "
    if char in string.punctuation:
        return char
    return "L" if char.isalpha() else "S"


def _bucket(length: int, buckets: tuple[tuple[int, int], ...]) -> int:
    for index, (_, high) in enumerate(buckets):
        if length <= high:
            return index
    return len(buckets) - 1


def _pick(counts: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    if n == 0 or len(counts) == 0:
        return np.zeros(n, dtype=np.int64)
    return rng.choice(len(counts), size=n, p=counts / counts.sum())


def _from_fine(shape: FineShape, n: int, rng: np.random.Generator) -> list[str]:
    """`n` strings with the runs of `shape`, each run of random characters of its class."""
    runs = []
    for cls, bucket in shape:
        low, high = RUN_BUCKETS[bucket]
        alphabet = np.array(list(_CLASS_CHARS.get(cls, cls)))
        chars = alphabet[rng.integers(0, len(alphabet), (n, high))]
        lengths = rng.integers(low, high + 1, n)
        chars[np.arange(high) >= lengths[:, None]] = _GAP
        runs.append(chars)
    return _strings(np.concatenate(runs, axis=1))


def _from_coarse(shape: CoarseShape, n: int, rng: np.random.Generator) -> list[str]:
    """`n` strings of random lowercase words with `shape`'s word count, length and case."""
    word_bucket, length_bucket, case = shape
    words = rng.integers(WORD_BUCKETS[word_bucket][0], WORD_BUCKETS[word_bucket][1] + 1, n)
    length = rng.integers(LENGTH_BUCKETS[length_bucket][0], LENGTH_BUCKETS[length_bucket][1] + 1, n)
    words = np.clip(words, 1, (length + 1) // 2)
    letters = np.maximum(length - (words - 1), words)
    width = int(letters.max())
    position = np.arange(width)
    # A space goes before letter j for words-1 distinct j in [1, letters): the smallest of
    # random keys drawn for the allowed positions.
    keys = rng.random((n, width))
    keys[(position == 0) | (position >= letters[:, None])] = np.inf
    space_before = np.zeros((n, width), dtype=bool)
    first = position[None, :] < (words - 1)[:, None]
    np.put_along_axis(space_before, np.argsort(keys, axis=1), first, axis=1)
    letter = rng.integers(0, 26, (n, width))
    if case == "upper":
        upper = np.ones((n, width), dtype=bool)
    elif case == "title":
        upper = space_before | (position == 0)
    elif case == "mixed":
        upper = rng.random((n, width)) < 0.3
    else:
        upper = np.zeros((n, width), dtype=bool)
    chars = np.where(upper, _UPPER[letter], _LOWER[letter])
    chars[position >= letters[:, None]] = _GAP
    spaces = np.where(space_before, " ", _GAP)
    return _strings(np.stack([spaces, chars], axis=2).reshape(n, 2 * width))


def _strings(chars: np.ndarray) -> list[str]:
    """Rows of a (n, width) array of single characters as strings, `_GAP` cells left out."""
    n, width = chars.shape
    if width == 0:
        return [""] * n
    joined = np.ascontiguousarray(chars, dtype="<U1").view(f"<U{width}")[:, 0]
    return [text.replace(_GAP, "") for text in joined.tolist()]


def _make_unique(values: list[str], seen: set[str]) -> list[str]:
    """Strings in the same formats, distinct from each other and from `seen`: a clash gets a
    numeric suffix."""
    out = []
    for value in values:
        candidate, suffix = value, 1
        while candidate in seen:
            candidate, suffix = f"{value}{suffix}", suffix + 1
        seen.add(candidate)
        out.append(candidate)
    return out
