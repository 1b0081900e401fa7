import dbt_synth


def model(dbt, session):
    dbt.config(materialized="table", synth={"epsilon": 1.0, "seed": 7, "holdout": 0.2})
    return dbt_synth.twin(dbt, session, dbt.source("raw", "cps1988"), dbt.config.get("synth"))
