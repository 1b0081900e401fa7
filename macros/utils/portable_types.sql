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
