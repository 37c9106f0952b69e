"""Commit throughput of the processor against the local AWS (not a test).

    eval "$(tools/local-aws start)"
    EDDY_CORE_DRIVER=build/tests/integration/core_driver \\
    EDDY_COUNTER_SO=build/tests/integration/counter.so \\
        .venv/bin/python tests/integration/bench_core.py

Runs core_driver (one lane per entity, as the worker's lanes) on a fresh table
for: one hot entity, one event per transaction; and 100 entities, one event per
entity step, the steps grouped into shared TransactWriteItems calls. Prints one
JSON line per case: entity commits (steps) per second and transactions per
second. Each case gets its own table, deleted afterwards, because moto's
TransactWriteItems copies every table it holds on each call.
"""

import json
import os
import subprocess
import sys

import awsenv

DRIVER = os.environ["EDDY_CORE_DRIVER"]
COUNTER = os.environ["EDDY_COUNTER_SO"]


def run_case(env, name, entities, per_entity, event_type="Tick"):
    table = awsenv.create_table(env, awsenv.unique_name("bench"))
    try:
        events = "".join(
            json.dumps({"entity": f"e{e}", "type": event_type, "id": f"{name}-{e}-{i}",
                        "data": {}}) + "\n"
            for i in range(per_entity) for e in range(entities))
        child = dict(os.environ, **env.values, EDDY_TABLE=table, EDDY_MACHINE=COUNTER,
                     EDDY_COALESCE_MAX="1", EDDY_LOG_LEVEL="warn")
        proc = subprocess.run([DRIVER], input=events, capture_output=True, text=True,
                              env=child, check=True)
        stats = json.loads(proc.stderr.strip().splitlines()[-1])
        steps = stats["batches"]
        print(json.dumps({
            "case": name, "entities": entities, "events": stats["events"],
            "transactions": stats["transactions"], "conflicts": stats["conflicts"],
            "seconds": round(stats["seconds"], 3),
            "entity_commits_per_s": round(steps / stats["seconds"], 1),
            "transactions_per_s": round(stats["transactions"] / stats["seconds"], 1),
        }), flush=True)
    finally:
        env.dynamodb().delete_table(TableName=table)


def main():
    env = awsenv.Env.current()
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    run_case(env, "hot", 1, n)
    run_case(env, "hot-emitting", 1, n, event_type="Increment")
    run_case(env, "spread", 100, max(1, n // 100) * 3)


if __name__ == "__main__":
    main()
