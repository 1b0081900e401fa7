import dbt_synth

# carrier, tailnum, origin and dest → parents come from the relationships tests in twins.yml.
# Configured here: the composite key (origin, time_hour) → weather_twin, which has no
# single-column test, and which parent attributes each key learns its dependency on.


def model(dbt, session):
    dbt.config(
        materialized="table",
        synth={
            "epsilon": 1.0,
            "foreign_keys": [
                {
                    "columns": ["origin", "time_hour"],
                    "parent": "weather_twin",
                    "attributes": ["month", "hour", "visib"],
                },
                {"columns": ["tailnum"], "parent": "planes_twin", "attributes": ["seats", "year"]},
                {
                    "columns": ["dest"],
                    "parent": "airports_twin",
                    "parent_columns": ["faa"],
                    "attributes": ["lon", "alt", "tz"],
                },
            ],
        },
    )
    # One dbt.ref / dbt.source per statement: dbt's Python-model parser does not see calls
    # nested inside tuples, and an unseen ref neither orders the build nor resolves.
    airlines = dbt.ref("airlines_twin")
    planes = dbt.ref("planes_twin")
    airports = dbt.ref("airports_twin")
    weather = dbt.ref("weather_twin")
    planes_raw = dbt.source("raw", "planes")
    airports_raw = dbt.source("raw", "airports")
    weather_raw = dbt.source("raw", "weather")
    return dbt_synth.child_twin(
        dbt,
        session,
        dbt.source("raw", "flights"),
        dbt.config.get("synth"),
        parents={
            "airlines_twin": airlines,
            "planes_twin": (planes, planes_raw),
            "airports_twin": (airports, airports_raw),
            "weather_twin": (weather, weather_raw),
        },
    )
