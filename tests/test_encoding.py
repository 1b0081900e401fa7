"""Column encodings: what the generator sees of a column, and back."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from dbt_synth.domains.categories import CategoryDomain
from dbt_synth.encoding import MAX_CATEGORY_CODES, CategoryModel
from dbt_synth.schema import column_spec


def _domain(values: int, *, nulls: bool) -> CategoryDomain:
    counts = np.arange(values, 0, -1, dtype=float) * 10  # value "v0" most frequent
    return CategoryDomain(
        values=tuple(f"v{i}" for i in range(values)),
        counts=counts,
        has_null=nulls,
        null_count=55.0 if nulls else 0.0,
        coverage=1.0,
    )


def test_wide_category_models_the_most_frequent_values_and_one_other_code():
    domain = _domain(300, nulls=True)
    model = CategoryModel(column_spec("dest", "VARCHAR"), domain, 5.0, public=False)
    assert model.cardinality == MAX_CATEGORY_CODES + 2  # + NULL + other
    codes = model.encode(pa.array(["v0", "v99", "v100", "v299", None, "never-kept"]))
    assert codes.tolist() == [0, 99, 101, 101, 100, 101]
    assert model.prior is None  # `other` sums noisy counts: not a single measurement


def test_other_decodes_to_values_outside_the_modelled_ones_by_noisy_frequency():
    domain = _domain(300, nulls=False)
    model = CategoryModel(column_spec("dest", "VARCHAR"), domain, 5.0, public=False)
    other = np.full(20_000, MAX_CATEGORY_CODES, dtype=np.int32)
    values = model.decode(other, np.random.default_rng(0)).to_pylist()
    drawn = np.array([int(v[1:]) for v in values])
    assert drawn.min() >= MAX_CATEGORY_CODES
    # v100 has count 2000, v299 has 10: the draw follows the noisy counts.
    assert (drawn == 100).mean() > 10 * (drawn == 299).mean()
    modelled = model.decode(np.arange(MAX_CATEGORY_CODES, dtype=np.int32), None)
    assert modelled.to_pylist() == [f"v{i}" for i in range(MAX_CATEGORY_CODES)]


def test_narrow_category_keeps_its_noisy_counts_as_a_prior():
    domain = _domain(4, nulls=True)
    model = CategoryModel(column_spec("region", "VARCHAR"), domain, 5.0, public=False)
    assert model.cardinality == 6
    assert np.array_equal(model.prior.counts[:5], [40, 30, 20, 10, 55])
    assert np.isnan(model.prior.counts[5])
    public = CategoryModel(column_spec("region", "VARCHAR"), domain, 5.0, public=True)
    assert public.cardinality == 5 and public.prior is not None


def test_an_integer_column_with_declared_categories_decodes_to_integers():
    # `accepted_values: [1, 2, 3, 4]` on an integer seed column: init declares the values
    # public; the twin's column must come back as integers (it failed as "expected bytes").
    domain = CategoryDomain(
        values=(1, 2, 3, 4),
        counts=np.array([5.0, 4, 3, 2]),
        has_null=False,
        null_count=0.0,
        coverage=1.0,
    )
    model = CategoryModel(column_spec("diet", "BIGINT"), domain, 5.0, public=True)
    decoded = model.decode(np.array([0, 3, 1], dtype=np.int32), None)
    assert decoded.to_pylist() == [1, 4, 2] and pa.types.is_integer(decoded.type)
