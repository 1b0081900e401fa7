{% macro synth_drop_real_seeds() %}
  {#-
    on-run-end (the package's own hook): with `--vars '{synth: true, synth_drop_real_seeds:
    true}'`, drop every real seed a twin is fit on once all the twins fit on it were built in
    this invocation, so that the warehouse holds no real seed and can be handed over. The seed
    was loaded only for those fits and the twin-vs-real tests, which run before this hook; the
    next `dbt build` loads it again. Kept: seeds a twin built in this invocation does not cover
    (`dbt seed` alone, a failed twin) and seeds in `synth_passthrough`. Opt-in: `dbt-synth
    report`, `dbt run --select <twin>` and a later `dbt test` read the real seeds.
  -#}
  {% if not execute or not dbt_synth.synth_mode() or not var('synth_drop_real_seeds', false) %}
    {{ return('') }}
  {% endif %}
  {% set built = [] %}
  {% for result in results if result.status == 'success' %}
    {% do built.append(result.node.unique_id) %}
  {% endfor %}
  {#- seed unique id → the twins fit on it (directly, or through models of the real pipeline). -#}
  {% set fitted_by = {} %}
  {% for twin in graph.nodes.values() if 'dbt_synth_twin' in (twin.tags or []) %}
    {% for uid in dbt_synth.synth_real_inputs(twin) if uid.startswith('seed.') %}
      {% do fitted_by.setdefault(uid, []).append(twin.unique_id) %}
    {% endfor %}
  {% endfor %}
  {% for uid, twins in fitted_by.items() | sort %}
    {% set seed = graph.nodes[uid] %}
    {% if seed.name not in var('synth_passthrough', []) and twins | reject('in', built) | list | length == 0 %}
      {% set relation = adapter.get_relation(database=seed.database, schema=seed.schema, identifier=seed.alias) %}
      {% if relation is not none %}
        {% do adapter.drop_relation(relation) %}
        {{ log("dbt-synth: dropped the real seed " ~ relation ~ " (synth_drop_real_seeds: its twins are built)", info=true) }}
      {% endif %}
    {% endif %}
  {% endfor %}
  {{ return('') }}
{% endmacro %}

{% macro synth_real_inputs(twin) %}
  {#- Unique ids of the real nodes `twin` is fit on: its inputs, and theirs up to other twins. -#}
  {% set inputs = [] %}
  {% for uid in twin.depends_on.nodes if uid not in inputs %}{% do inputs.append(uid) %}{% endfor %}
  {#- `inputs` grows while it is walked: a breadth-first walk up the real pipeline. -#}
  {% for uid in inputs %}
    {% set node = graph.nodes.get(uid) %}
    {% if node and 'dbt_synth_twin' not in (node.tags or []) %}
      {% for parent in node.depends_on.nodes if parent not in inputs %}
        {% do inputs.append(parent) %}
      {% endfor %}
    {% endif %}
  {% endfor %}
  {{ return(inputs) }}
{% endmacro %}
