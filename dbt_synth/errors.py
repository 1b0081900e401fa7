"""The one exception type a dbt user sees: it names the model, the column and the fix."""

from __future__ import annotations


class SynthError(Exception):
    """A twin cannot be built as configured.

    The message always reads `dbt-synth: model 'M', column 'C': what happened. Fix: what to do.`
    so a failing `dbt build` tells the user where to look without a traceback to decode.
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
