{% macro synth_source(source_name, table_name) %}
  {#-
    `source()` for a project that adopts synth mode. With `--vars 'synth: true'` a model's
    source('s', 't') resolves to the twin model `t_twin`, so the whole downstream project runs on
    synthetic data; otherwise (and always for the twin itself and for tests) the real source.
  -#}
  {{ return(adapter.dispatch('synth_source', 'dbt_synth')(source_name, table_name)) }}
{% endmacro %}

{% macro default__synth_source(source_name, table_name) %}
  {% set twin = dbt_synth.synth_twin_name(table_name) %}
  {% set passthrough = var('synth_passthrough', []) %}
  {% if not dbt_synth.synth_mode()
        or model.resource_type != 'model'
        or model.name == twin
        or (source_name ~ '.' ~ table_name) in passthrough %}
    {{ return(builtins.source(source_name, table_name)) }}
  {% endif %}
  {{ return(builtins.ref(twin)) }}
{% endmacro %}
