{% macro type_double() %}
  {{ return(adapter.dispatch('type_double', 'dbt_synth')()) }}
{% endmacro %}

{% macro default__type_double() %}
{#- An 8-byte float. dbt.type_float() is not one everywhere (DuckDB's and Spark's FLOAT have 4
    bytes), and the tests' shares and correlations need double precision. -#}
  {{ return('double precision') }}
{% endmacro %}

{% macro spark__type_double() %}
{#- Spark's parser rejects `double precision`; its DOUBLE is the same 8-byte float. -#}
  {{ return('double') }}
{% endmacro %}

{% macro rounded_text(expression, digits) %}
{#- `expression` rounded to `digits` decimals, as text, for the `detail` of a failing row.
    Through dbt.type_numeric() (a fixed scale of 6) because a bare NUMERIC is DECIMAL(18,3) in
    DuckDB and DECIMAL(10,0) in Spark, which would round before the rounding. -#}
  {{- "cast(round(cast(" ~ expression ~ " as " ~ dbt.type_numeric() ~ "), " ~ digits ~ ") as "
      ~ dbt.type_string() ~ ")" -}}
{% endmacro %}

{% macro epoch_days(expression) %}
  {{ return(adapter.dispatch('epoch_days', 'dbt_synth')(expression)) }}
{% endmacro %}

{% macro default__epoch_days(expression) %}
{#- Days since 1970-01-01 00:00 UTC of a date or timestamp, as a double (fractions of a day
    kept): how `dbt-synth report` puts dates on a number line. -#}
  {{ return("cast(extract(epoch from " ~ expression ~ ") as " ~ dbt_synth.type_double() ~ ") / 86400") }}
{% endmacro %}

{% macro spark__epoch_days(expression) %}
{#- Spark has no EXTRACT(EPOCH ...); a timestamp cast to DOUBLE is its epoch seconds. -#}
  {{ return("cast(cast(" ~ expression ~ " as timestamp) as double) / 86400") }}
{% endmacro %}

{% macro duckdb__epoch_days(expression) %}
{#- epoch() rather than EXTRACT(EPOCH ...): DuckDB 2.0's optimizer folds a comparison of
    EXTRACT(EPOCH FROM <TIMESTAMP_NS column>) in a projection to a constant (wrong statistics),
    so every timestamp landed in one histogram bin. -#}
  {{ return("cast(epoch(" ~ expression ~ ") as double) / 86400") }}
{% endmacro %}

{% macro quantile_sketch(expression, fractions) %}
  {{ return(adapter.dispatch('quantile_sketch', 'dbt_synth')(expression, fractions)) }}
{% endmacro %}

{% macro default__quantile_sketch(expression, fractions) %}
{#- No sketch: the caller computes exact order statistics (a sort of the values, by a window
    with no PARTITION BY), which DuckDB and Postgres sort in parallel. -#}
  {{ return('') }}
{% endmacro %}

{% macro spark__quantile_sketch(expression, fractions) %}
{#- Spark runs a window without PARTITION BY in one task: an exact quantile sorted every row on
    one core. percentile_approx is a distributed aggregate (each task sketches its rows, the
    sketches merge), its rank error at most rows/10,000. An array, one value per fraction
    (`fractions`: SQL constants). -#}
  {{ return("percentile_approx(" ~ expression ~ ", array(" ~ fractions | join(", ") ~ "), 10000)") }}
{% endmacro %}
