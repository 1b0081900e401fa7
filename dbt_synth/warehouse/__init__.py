"""The warehouse seam (`base.py`) and its implementations; importing this registers them all."""

from dbt_synth.warehouse import duckdb as _duckdb  # noqa: F401  (registers DuckDBWarehouse)
from dbt_synth.warehouse import spark as _spark  # noqa: F401  (registers SparkWarehouse)
from dbt_synth.warehouse.base import OwnTable, Warehouse, WarehouseError, create, register

__all__ = ["OwnTable", "Warehouse", "WarehouseError", "create", "register"]
