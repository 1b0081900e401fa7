{% macro cps1988_twin_relation() %}
{#- The DP twin of raw.cps1988. DuckDB and Spark build it (a dbt Python model); dbt-postgres
    runs no Python models, so on Postgres the twin built on DuckDB is loaded as raw.cps1988_twin
    (scripts/load_data.py --target postgres --twin-from ...). -#}
  {% if target.type in ('duckdb', 'spark') %}{{ return(ref('cps1988_twin')) }}
  {% else %}{{ return(source('raw', 'cps1988_twin')) }}{% endif %}
{% endmacro %}
