"""The holdout rule: one definition in Python, recomputed identically by SQL on every warehouse."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import duckdb
import jinja2
import pytest

from dbt_synth.config import parse_config
from dbt_synth.errors import ConfigError
from dbt_synth.holdout import hash_fraction, is_held_out, row_text, rule_for, value_text
from dbt_synth.schema import ColumnKind, TableSchema, column_spec
from fixtures.real_data import cps1988
from tests.dbt_projects import REPO_ROOT

K = ColumnKind


def _portable_hash_fraction(expression: str) -> str:
    """The `default__` (portable SQL) body of macros/utils/hash_fraction.sql, rendered."""
    source = (REPO_ROOT / "macros" / "utils" / "hash_fraction.sql").read_text()
    module = jinja2.Environment(extensions=["jinja2.ext.do"]).from_string(source).module
    return str(module.default__hash_fraction(expression))


def test_hash_fraction_reads_the_first_32_bits_of_md5():
    # md5("abc") = 900150983cd24fb0...; 0x90015098 = 2416005272.
    assert hash_fraction("abc") == 2416005272 / 2**32


@pytest.mark.parametrize(
    ("value", "kind", "text"),
    [
        (None, K.STRING, "\\N"),
        (float("nan"), K.FLOAT, "\\N"),
        (True, K.BOOLEAN, "true"),
        (12, K.INTEGER, "12"),
        (500.0, K.FLOAT, "500.000000"),
        (354.94, K.FLOAT, "354.940000"),
        (-0.0, K.FLOAT, "0.000000"),
        (Decimal("1.5"), K.DECIMAL, "1.500000"),
        (dt.date(2013, 1, 5), K.DATE, "2013-01-05"),
        (dt.datetime(2013, 1, 1, 5, 0, 0, 500000), K.TIMESTAMP, "2013-01-01 05:00:00.5"),
        (dt.datetime(2013, 1, 1, 5, 0), K.TIMESTAMP, "2013-01-01 05:00:00"),
        ("south", K.STRING, "south"),
    ],
)
def test_value_text_matches_what_duckdb_and_postgres_print(value, kind, text):
    assert value_text(value, kind) == text


def test_duckdb_prints_the_same_canonical_texts():
    con = duckdb.connect()
    rendered = con.execute(
        "select cast(cast(500.0 as double) as decimal(38, 6))::varchar,"
        " cast(cast(-0.0 as double) as decimal(38, 6))::varchar,"
        " cast(timestamp '2013-01-01 05:00:00.5' as varchar), cast(date '2013-01-05' as varchar)"
    ).fetchone()
    assert rendered == ("500.000000", "0.000000", "2013-01-01 05:00:00.5", "2013-01-05")


def test_about_the_configured_share_of_real_rows_is_held_out():
    frame = cps1988()
    kinds = [K.FLOAT, K.INTEGER, K.INTEGER, K.STRING, K.STRING, K.STRING, K.STRING]
    held = sum(is_held_out(tuple(r), kinds, 0.2) for r in frame.itertuples(index=False))
    # Binomial(28155, 0.2): sd 67 rows; duplicated rows move together, so allow 5 sd.
    assert abs(held - 0.2 * len(frame)) < 340


def test_portable_sql_hash_fraction_agrees_with_python_on_duckdb():
    texts = [
        row_text(tuple(r), [K.FLOAT] + [K.STRING] * 6)
        for r in cps1988().head(500).astype(str).itertuples(index=False)
    ]
    con = duckdb.connect()
    con.execute("create table t (s varchar)")
    con.executemany("insert into t values (?)", [(t,) for t in texts])
    got = [r[0] for r in con.execute(f"select {_portable_hash_fraction('s')} from t").fetchall()]
    assert got == pytest.approx([hash_fraction(t) for t in texts], abs=1e-12)


def test_holdout_config_is_validated_with_a_fix():
    assert parse_config({"holdout": 0.2}).holdout == 0.2
    assert parse_config({}).holdout == 0.0
    with pytest.raises(ConfigError, match=r"holdout must be a share in \[0, 0.5\].*Fix:"):
        parse_config({"holdout": 0.7}, model="m")


def test_holdout_key_must_name_source_columns():
    schema = TableSchema("t", (column_spec("id", "BIGINT"), column_spec("x", "DOUBLE")))
    assert rule_for(schema, 0.2, ("id",)).describe()["key"] == ["id"]
    with pytest.raises(ConfigError, match="holdout key column"):
        rule_for(schema, 0.2, ("missing",))


def test_portable_and_postgres_hash_fraction_agree_with_python_on_postgres():
    import os

    import psycopg2

    try:
        con = psycopg2.connect(
            host=os.environ.get("DBT_SYNTH_PG_HOST", "127.0.0.1"),
            port=int(os.environ.get("DBT_SYNTH_PG_PORT", "5432")),
            user=os.environ.get("DBT_SYNTH_PG_USER", "postgres"),
            password=os.environ.get("DBT_SYNTH_PG_PASSWORD", "postgres"),
            dbname=os.environ.get("DBT_SYNTH_PG_DBNAME", "dbt_synth"),
            connect_timeout=5,
        )
    except psycopg2.OperationalError as error:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"no Postgres server reachable ({error}); run scripts/start_postgres.sh")
    texts = ["abc", "354.940000|7|45|cauc|yes|northeast|no", "\\N|", "é"]
    portable = _portable_hash_fraction("s")
    native = "(('x' || substr(md5(s), 1, 8))::bit(32)::bigint / 4294967296.0)"
    with con, con.cursor() as cur:
        cur.execute(
            f"select {portable}, {native} from unnest(%s::text[]) with ordinality as t(s, i) "
            "order by i",
            (texts,),
        )
        rows = cur.fetchall()
    con.close()
    expected = [hash_fraction(t) for t in texts]
    assert [float(r[0]) for r in rows] == pytest.approx(expected, abs=1e-12)
    assert [float(r[1]) for r in rows] == pytest.approx(expected, abs=1e-12)
