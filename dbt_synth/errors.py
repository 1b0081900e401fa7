"""The one exception type a dbt user sees: it names the model, the column and the fix."""

from __future__ import annotations

import sys
from types import TracebackType


class SynthError(Exception):
    """A twin cannot be built as configured.

    The message always reads `dbt-synth: model 'M', column 'C': what happened. Fix: what to do.`
    so a failing `dbt build` tells the user where to look without a traceback to decode.

    dbt-duckdb reports a failing Python model as `traceback.format_exception(error)`: a dozen
    frames of dbt-duckdb and dbt-synth before the one line that matters. A SynthError is a
    complete diagnosis, so to the `traceback` module its `__traceback__` reads as None and that
    report is the message alone. Everything else (pytest, debuggers, `sys.exc_info()`) still
    sees the frames, and a bug in dbt-synth itself, never a SynthError, keeps its traceback.
    """

    def __init__(
        self,
        problem: str,
        *,
        fix: str,
        model: str | None = None,
        column: str | None = None,
    ) -> None:
        self.problem = problem
        self.fix = fix
        self.model = model
        self.column = column
        super().__init__(self._render())

    @property
    def __traceback__(self) -> TracebackType | None:  # type: ignore[override]
        if sys._getframe(1).f_globals.get("__name__") == "traceback":
            return None  # rendered by the traceback module: the message alone
        return BaseException.__traceback__.__get__(self)  # type: ignore[attr-defined]

    @__traceback__.setter
    def __traceback__(self, value: TracebackType | None) -> None:
        BaseException.__traceback__.__set__(self, value)  # type: ignore[attr-defined]

    def _render(self) -> str:
        where = []
        if self.model:
            where.append(f"model '{self.model}'")
        if self.column:
            where.append(f"column '{self.column}'")
        prefix = "dbt-synth: " + (", ".join(where) + ": " if where else "")
        return f"{prefix}{self.problem}. Fix: {self.fix}"

    def for_model(self, model: str) -> SynthError:
        """The same error, attributed to `model` when the raiser did not know it."""
        if self.model:
            return self
        return type(self)(self.problem, fix=self.fix, model=model, column=self.column)


class ConfigError(SynthError):
    """The `synth` config of a twin is invalid."""


class SourceError(SynthError):
    """The source table cannot be twinned (empty, or a column type the generator cannot model)."""


class BudgetError(SynthError):
    """The privacy budget cannot cover what the twin needs."""
