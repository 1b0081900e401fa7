{% macro synth_check_real_read(label, twins=none) %}
  {#-
    In synth mode, fail compilation of a node that would read real data that has or could have
    a twin: a seed, source or snapshot, or a model upstream of a twin (the real pipeline twins
    are fit on). Models, generic and singular tests and Python models alike; exempt are twins,
    tests that compare a twin with its real table, the real pipeline itself and everything
    listed in the `synth_passthrough` var.
  -#}
  {% if not execute or not dbt_synth.synth_mode() or not dbt_synth.synth_redirects_in_node(twins) %}
    {{ return('') }}
  {% endif %}
  {% if label in var('synth_passthrough', []) %}{{ return('') }}{% endif %}
  {% set read = dbt_synth.synth_dependency(label) %}
  {% if read is none %}{{ return('') }}{% endif %}
  {% set kind = read.split('.')[0] %}
  {#- A twin is synthetic, also where another twin is fit on it (a child's parent). -#}
  {% if 'dbt_synth_twin' in (graph.nodes.get(read, {}).get('tags') or []) %}{{ return('') }}{% endif %}
  {% set real_side = dbt_synth.synth_real_side() %}
  {% if model.unique_id in real_side %}{{ return('') }}{% endif %}
  {% if kind == 'model' and read not in real_side %}{{ return('') }}{% endif %}
  {% set twin = (twins or {}).get(label) %}
  {% set named = dbt_synth.synth_twin_name(label.split('.')[-1]) %}
  {% set built = graph.nodes.values() | selectattr('name', 'equalto', named) | list %}
  {% if twin %}
    {% set problem = "reads the real " ~ kind ~ " '" ~ label ~ "', not its twin '" ~ twin ~ "'" %}
    {% set fix = "re-run dbt-synth init and apply its notes (its macros/dbt_synth_mode.sql makes models, generic tests and Python models read twins) or pass it through (--vars '{synth: true, synth_passthrough: [" ~ label ~ "]}')" %}
  {% elif built and 'dbt_synth_twin' in (built[0].tags or []) %}
    {% set problem = "reads the real " ~ kind ~ " '" ~ label ~ "': synth mode does not know its twin '" ~ named ~ "' yet" %}
    {% set fix = "re-run dbt-synth init (it writes the list of twins synth mode reads)" %}
  {% else %}
    {% set what = " (an input of a twin)" if kind == 'model' else "" %}
    {% set problem = "in synth mode it would read the real " ~ kind ~ " '" ~ label ~ "'" ~ what %}
    {% set selector = 'source:' ~ label if kind == 'source' else label %}
    {% set fix = "twin it (dbt-synth init --select " ~ selector ~ ") or pass it through (--vars '{synth: true, synth_passthrough: [" ~ label ~ "]}')" %}
  {% endif %}
  {% do exceptions.raise_compiler_error("dbt-synth: " ~ model.resource_type ~ " '" ~ model.name ~ "': " ~ problem ~ ". Fix: " ~ fix) %}
{% endmacro %}

{% macro synth_dependency(label) %}
  {#- The unique id of what the current node reads as `label` (`source.table` or a name). -#}
  {% for uid in model.depends_on.nodes %}
    {% set parts = uid.split('.') %}
    {% if (parts[0] == 'source' and parts[-2] ~ '.' ~ parts[-1] == label)
          or (parts[0] != 'source' and parts[-1] == label) %}
      {{ return(uid) }}
    {% endif %}
  {% endfor %}
  {{ return(none) }}
{% endmacro %}

{% macro synth_real_side() %}
  {#- Unique ids of every node upstream of a twin: the real pipeline twins are fit on. -#}
  {% set side = [] %}
  {% for twin in graph.nodes.values() if 'dbt_synth_twin' in (twin.tags or []) %}
    {% for uid in dbt_synth.synth_real_inputs(twin) if uid not in side %}
      {% do side.append(uid) %}
    {% endfor %}
  {% endfor %}
  {{ return(side) }}
{% endmacro %}
