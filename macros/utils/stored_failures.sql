{% macro observed_hidden() %}
{#- True when this test's failing rows are written to the warehouse (store_failures, or
    store_failures_as table/view) and the project has not opted in to storing the observed
    figures (`vars: {dbt_synth_store_observed: true}`). A failing row's `observed` is a distance
    between the twin and the real table, computed exactly from real rows: with the twin at hand
    some of them give a real figure back (a NULL rate or a correlation up to its sign), so they
    are not DP releases and are not written unless the project says so. The rows that are only
    counted (no store_failures) are read by the test query and never leave the warehouse. -#}
  {%- set stored = should_store_failures() or config.get('store_failures_as') in ('table', 'view') -%}
  {{- return(stored and not var('dbt_synth_store_observed', false)) -}}
{% endmacro %}

{% macro observed_or_null(expression='observed') %}
{#- `expression` when the observed figure may be shown, else a typed NULL (see observed_hidden). -#}
  {%- if dbt_synth.observed_hidden() -%}
    cast(null as {{ dbt_synth.type_double() }})
  {%- else -%}
    {{ expression }}
  {%- endif -%}
{% endmacro %}
