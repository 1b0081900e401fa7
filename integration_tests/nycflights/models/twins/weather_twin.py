import dbt_synth

# weather.origin → airports is discovered from the relationships test in twins.yml; it is
# configured here only to pick category mode: the three NYC origins are frequent values of
# weather, mapped one-to-one onto airports_twin keys. A fifth of the hours (by row hash) is held
# out of the fit, for near_duplicate_leakage in twins.yml.


def model(dbt, session):
    dbt.config(
        materialized="table",
        synth={
            "epsilon": 1.0,
            "holdout": 0.2,
            "foreign_keys": [
                {"columns": ["origin"], "parent": "airports_twin", "mode": "category"}
            ],
        },
    )
    return dbt_synth.child_twin(
        dbt,
        session,
        dbt.source("raw", "weather"),
        dbt.config.get("synth"),
        parents={"airports_twin": dbt.ref("airports_twin")},
    )
