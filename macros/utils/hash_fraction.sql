{% macro hash_fraction(text_expression) %}
  {{ return(adapter.dispatch('hash_fraction', 'dbt_synth')(text_expression)) }}
{% endmacro %}

{% macro default__hash_fraction(text_expression) %}
{#- A number in [0, 1) from the first 32 bits of md5(text): the first 8 hex digits read as an
    unsigned integer, divided by 2^32. The same rule as dbt_synth/holdout.py, so Python and every
    warehouse put a row in the same bucket. Portable SQL: digit by digit. -#}
  (
  {%- for i in range(8) %}
    (position(substr(md5({{ text_expression }}), {{ i + 1 }}, 1) in '0123456789abcdef') - 1)
      * {{ 16 ** (7 - i) }}.0{{ ' +' if not loop.last }}
  {%- endfor %}
  ) / 4294967296.0
{% endmacro %}

{% macro postgres__hash_fraction(text_expression) %}
  (('x' || substr(md5({{ text_expression }}), 1, 8))::bit(32)::bigint / 4294967296.0)
{% endmacro %}

{% macro duckdb__hash_fraction(text_expression) %}
  (cast('0x' || substr(md5({{ text_expression }}), 1, 8) as ubigint) / 4294967296.0)
{% endmacro %}

{% macro spark__hash_fraction(text_expression) %}
{#- md5 once: the default's eight digit terms each call md5 over the row text, and Spark repeats
    that work in a filter (24 md5 per real row in near_duplicate_leakage's train and holdout
    filters). conv reads the 8 hex digits; k / 2^32 is exact in a double, as in Python. -#}
  (cast(conv(substr(md5({{ text_expression }}), 1, 8), 16, 10) as bigint) / cast(4294967296 as double))
{% endmacro %}
