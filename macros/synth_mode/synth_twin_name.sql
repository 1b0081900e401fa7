{% macro synth_twin_name(name) %}
  {#- The twin model of source table or model `name`, as `dbt-synth init` names it. -#}
  {{ return(name ~ '_twin') }}
{% endmacro %}
