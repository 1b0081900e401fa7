{% macro synth_source(source_name, table_name) %}
  {#-
    `source()` for a project that adopts synth mode. With `--vars 'synth: true'` a model's
    source('s', 't') resolves to the twin model `t_twin`, so the whole downstream project runs on
    synthetic data; otherwise (and always in twin models and in tests) the real source.
  -#}
  {{ return(adapter.dispatch('synth_source', 'dbt_synth')(source_name, table_name)) }}
{% endmacro %}

{% macro default__synth_source(source_name, table_name) %}
  {% set twin = dbt_synth.synth_twin_name(table_name) %}
  {% set passthrough = var('synth_passthrough', []) %}
  {#- A twin reads real tables, its parents' included (a child twin learns from them). -#}
  {% set is_twin = model.name == twin
        or 'dbt_synth_twin' in (model.config.tags or [])
        or (model.language == 'python' and 'dbt_synth.' in (model.raw_code or '')) %}
  {% if not dbt_synth.synth_mode()
        or model.resource_type != 'model'
        or is_twin
        or (source_name ~ '.' ~ table_name) in passthrough %}
    {{ return(builtins.source(source_name, table_name)) }}
  {% endif %}
  {{ return(builtins.ref(twin)) }}
{% endmacro %}
