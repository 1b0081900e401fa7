{% macro ledger_summary(ledger_table='synth_ledger', ledger_schema=none) %}
  {{ return(adapter.dispatch('ledger_summary', 'dbt_synth')(ledger_table, ledger_schema)) }}
{% endmacro %}

{% macro default__ledger_summary(ledger_table, ledger_schema) %}
  {#- One log line per twin built in this invocation: ε and δ spent, mechanism, rows. -#}
  {% if not execute %}{{ return('') }}{% endif %}
  {#- Each twin writes its ledger next to itself (or to its synth.ledger_schema): look there. -#}
  {% set schemas = [] %}
  {% for node in graph.nodes.values() if 'dbt_synth_twin' in (node.tags or []) %}
    {% set schema_name = ledger_schema or (node.config.get('synth') or {}).get('ledger_schema') or node.schema %}
    {% if schema_name not in schemas %}{% do schemas.append(schema_name) %}{% endif %}
  {% endfor %}
  {% if not schemas %}{% do schemas.append(ledger_schema or target.schema) %}{% endif %}
  {% for schema_name in schemas %}
    {% do dbt_synth.ledger_summary_of(schema_name, ledger_table) %}
  {% endfor %}
  {{ return('') }}
{% endmacro %}

{% macro ledger_summary_of(schema_name, ledger_table) %}
  {#- The log lines of one ledger table, for this invocation's builds. -#}
  {% if not dbt_synth._ledger_exists(schema_name, ledger_table) %}{{ return('') }}{% endif %}
  {#- Spark targets have no database: target.get, not target.database (Undefined there). -#}
  {% set ledger = api.Relation.create(database=target.get('database'), schema=schema_name, identifier=ledger_table) %}
  {% set query %}
    select model, mechanism, epsilon, target_epsilon, delta, twin_rows
    from {{ ledger }}
    where invocation_id = '{{ invocation_id }}'
    order by model
  {% endset %}
  {% set rows = run_query(query) %}
  {% for row in rows %}
    {{ log("dbt-synth: " ~ row['model'] ~ " spent ε=" ~ "%.3f" | format(row['epsilon']) ~ " of " ~ row['target_epsilon'] ~ " (δ=" ~ "%.1e" | format(row['delta']) ~ ", " ~ row['mechanism'] ~ ", " ~ row['twin_rows'] ~ " rows)", info=true) }}
  {% endfor %}
  {{ return('') }}
{% endmacro %}

{% macro _ledger_exists(schema_name, ledger_table) %}
  {{ return(adapter.dispatch('_ledger_exists', 'dbt_synth')(schema_name, ledger_table)) }}
{% endmacro %}

{% macro default___ledger_exists(schema_name, ledger_table) %}
  {#- The ledger is written by Python models, so dbt's relation cache does not know it: ask the catalog. -#}
  {% set exists_query %}
    select count(*) from information_schema.tables
    where table_schema = '{{ schema_name }}' and table_name = '{{ ledger_table }}'
  {% endset %}
  {{ return(run_query(exists_query).columns[0].values()[0] > 0) }}
{% endmacro %}

{% macro spark___ledger_exists(schema_name, ledger_table) %}
  {#- Spark has no information_schema; SHOW TABLES lists what the catalog holds (none when the
      schema itself is missing, which SHOW TABLES IN would report as an error). -#}
  {% set schemas = run_query("show schemas like '" ~ schema_name ~ "'") %}
  {% if schemas | length == 0 %}{{ return(false) }}{% endif %}
  {% set tables = run_query("show tables in " ~ schema_name ~ " like '" ~ ledger_table ~ "'") %}
  {{ return(tables | length > 0) }}
{% endmacro %}
