{% macro synth_mode() %}
  {#- True when the invocation runs on twins: `--vars 'synth: true'` (also "true", 1). -#}
  {{ return(var('synth', false) | string | lower in ['true', '1', 'yes']) }}
{% endmacro %}
