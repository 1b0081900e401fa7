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
  {#- The ledger is written by Python models, so dbt's relation cache does not know it: ask the catalog. -#}
  {% set exists_query %}
    select count(*) from information_schema.tables
    where table_schema = '{{ schema_name }}' and table_name = '{{ ledger_table }}'
  {% endset %}
  {% if run_query(exists_query).columns[0].values()[0] == 0 %}{{ return('') }}{% endif %}
  {% set ledger = api.Relation.create(database=target.database, schema=schema_name, identifier=ledger_table) %}
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
