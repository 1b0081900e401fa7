"""Fresh keys that never equal a real one, by construction — not by filtering.

A twin's keys are new values, never modelled: a key says nothing about the other columns, and a
twin key equal to a real one invites a reviewer (or an attacker) to join the twin to the real
table. Checking twin keys against the real ones would itself leak which keys exist, so the form
of a twin key is chosen so that no real key can have it:

- integer keys are negative (`-1, -2, …`), or above a declared public `max`;
- string keys with a declared `format` keep its layout with one reserved character that the
  format cannot hold at that position (`S999999` → `Z` + 6 digits);
- string keys without one are drawn in the column's DP formats with a reserved first character
  `~`.

`columns.<c>.id_form: plain` opts out: keys `1…n`, or strings in the plain format, which may
equal a real key by chance.
"""

from __future__ import annotations

from enum import Enum

import numpy as np
import pyarrow as pa

from dbt_synth.domains.text import TextDomain
from dbt_synth.roles import FormatPattern, reserve_strings, unique_draws
from dbt_synth.schema import ColumnSpec

_UNSIGNED_TOP = 2**63 - 1


class IdForm(Enum):
    """How fresh keys are written: in a reserved form (default) or plainly (the opt-out)."""

    RESERVED = "reserved"
    PLAIN = "plain"


def integer_keys(
    start: int, n: int, spec: ColumnSpec, form: IdForm, declared_max: float | None
) -> np.ndarray:
    """Keys `start+1 … start+n` in the column's form (chunks never repeat a key).

    Reserved: above a declared public maximum, else negative; an unsigned type, which cannot
    hold negatives, counts down from the top of the 64-bit range.
    """
    offsets = np.arange(start + 1, start + n + 1, dtype=np.int64)
    if form is IdForm.PLAIN:
        return offsets
    if declared_max is not None:
        return np.int64(np.floor(declared_max)) + offsets
    if spec.sql_type.upper().startswith("U"):
        return _UNSIGNED_TOP - offsets
    return -offsets


class StringKeyModel:
    """A string key: new unique strings in the declared format or the DP formats, reserved.

    `pattern` is the declared format (zero ε: no domain was learned) or None, then `domain`
    holds the column's DP formats.
    """

    modelled = False
    prior = None
    cardinality = 0
    unique = True

    def __init__(
        self,
        spec: ColumnSpec,
        *,
        pattern: str | None,
        domain: TextDomain | None,
        form: IdForm = IdForm.RESERVED,
    ) -> None:
        if pattern is None and domain is None:
            raise ValueError("a string key needs a declared format or a DP text domain")
        self.spec = spec
        self.pattern = pattern
        self.domain = domain
        self.form = form
        self._issued: set[str] = set()

    def generate(self, n: int, rng: np.random.Generator, *, start: int = 0) -> pa.Array:
        """`n` keys, unique across the chunks of one pass (which starts at 0)."""
        if start == 0:
            self._issued = set()
        return pa.array(unique_draws(lambda k: self._draw(k, rng), n, self._issued))

    def _draw(self, n: int, rng: np.random.Generator) -> list[str]:
        reserved = self.form is IdForm.RESERVED
        if self.pattern is not None:
            pattern = FormatPattern.parse(self.pattern)
            return (pattern.reserved() if reserved else pattern).generate(n, rng)
        assert self.domain is not None
        drawn = self.domain.sample(n, rng)
        return reserve_strings(drawn) if reserved else drawn

    def describe(self) -> str:
        shape = f"format {self.pattern}" if self.pattern else "DP formats"
        return f"key: generated unique strings ({shape}, {self.form.value} form)"
