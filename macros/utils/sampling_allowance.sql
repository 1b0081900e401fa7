{#- What two samples of one distribution differ by, for n and m values: the allowance the drift
    tests add to their thresholds. Each is computed from real counts, so it is never shown. -#}

{% macro sampling_tvd(p_pooled, n, m) %}
{#- The expected TVD of sampling alone, as an aggregate over the cells: 0.5·Σ sqrt(2/π)·
    sqrt(p(1-p)(1/n + 1/m)), p the cell's pooled share (normal approximation of each cell). -#}
  {{ return("0.5 * 0.7978845608 * sum(sqrt(" ~ p_pooled ~ " * (1 - " ~ p_pooled ~ ") * (1.0 / "
            ~ n ~ " + 1.0 / " ~ m ~ ")))") }}
{% endmacro %}

{% macro sampling_ks(n, m) %}
{#- The expected two-sample KS statistic of sampling alone: the mean of Kolmogorov's
    distribution, sqrt(π/2)·ln 2 ≈ 0.8687, times sqrt(1/n + 1/m). -#}
  {{ return("0.8687 * sqrt(1.0 / " ~ n ~ " + 1.0 / " ~ m ~ ")") }}
{% endmacro %}
