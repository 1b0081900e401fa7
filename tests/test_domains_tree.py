"""The key space and the noisy tree of ordered columns (`dbt_synth.domains.tree`)."""

from __future__ import annotations

import numpy as np

from dbt_synth.domains.tree import from_keys, grid_span, to_keys


def test_keys_preserve_order_of_every_double():
    values = np.array([-np.inf, -1e300, -1.5, -0.0, 0.0, 1e-300, 2.5, 1e300, np.inf])
    keys = to_keys(values)
    assert (np.diff(keys.astype(np.float64)) >= 0).all()
    assert np.array_equal(from_keys(keys), values)


def test_grid_span_is_exact_at_the_ulp():
    below_seven = np.nextafter(7.0, 0.0)
    low = np.array([6.0, below_seven, 0.0, 0.07, 4.25])
    high = np.array([below_seven, below_seven, 0.29, 0.0799, 4.9])
    first, last = grid_span(low, high, 0)
    assert list(first) == [6, 7, 0, 1, 5] and list(last) == [6, 6, 0, 0, 4]
    first, last = grid_span(low, high, 2)
    assert list(first) == [600, 700, 0, 7, 425] and list(last) == [699, 699, 29, 7, 490]
