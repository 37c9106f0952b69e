"""Shared pieces of the tests that drive the event-sourced core against the
local AWS: the processor through core_driver (drive) and the store commands of
the eddy binary (eddy get/history/replay [--repair]), one table per test.

Used by tests/integration/test_core.py (the processor), tests/cli/test_store.py
(the store commands) and tests/integration/test_interop.py (a-h/stream). Paths come from the environment (set by
tests/integration/meson.build): EDDY_CORE_DRIVER, EDDY_BIN, EDDY_COUNTER_SO,
EDDY_COUNTER_V2_SO.
"""

import json
import os
import subprocess

import awsenv

DRIVER = os.environ["EDDY_CORE_DRIVER"]
EDDY = os.environ["EDDY_BIN"]
COUNTER = os.environ.get("EDDY_COUNTER_SO", "")  # not set for test_interop.py
COUNTER_V2 = os.environ.get("EDDY_COUNTER_V2_SO", "")

ENV = awsenv.Env.current()
DDB = ENV.dynamodb()
TABLE = None  # one table per test, deleted after it: moto copies every table per transaction
DEFAULTS = {}  # settings every child gets (test_interop.py: one event per commit)


def with_table(test, prefix="core"):
    """TEST run on a table of its own (corekit.TABLE), deleted after it."""
    def run():
        global TABLE
        TABLE = awsenv.create_table(ENV, awsenv.unique_name(prefix))
        try:
            test()
        finally:
            DDB.delete_table(TableName=TABLE)
    run.__name__ = test.__name__
    run.__doc__ = test.__doc__
    return run


def child_env(machine, **extra):
    env = dict(os.environ)
    env.update(ENV.values)
    env.update({"EDDY_TABLE": TABLE, "EDDY_MACHINE": machine, "EDDY_LOG_LEVEL": "warn"})
    env.update({k: str(v) for k, v in {**DEFAULTS, **extra}.items()})
    return env


def events_text(events):
    return "".join(json.dumps(e) + "\n" for e in events)


def drive(events, machine=COUNTER, expect_rc=0, **extra):
    """Run core_driver on events; return ({id: last result}, stats, stderr)."""
    proc = subprocess.run([DRIVER], input=events_text(events), capture_output=True, text=True,
                          env=child_env(machine, **extra), timeout=300)
    assert proc.returncode == expect_rc, f"driver exit {proc.returncode}: {proc.stderr[-2000:]}"
    results = {}
    drive.lines = [json.loads(line) for line in proc.stdout.splitlines()]
    for r in drive.lines:
        results[r["id"]] = r
    stats = json.loads(proc.stderr.strip().splitlines()[-1])
    return results, stats, proc.stderr


def eddy(args, machine=COUNTER, expect_rc=0):
    proc = subprocess.run([EDDY] + args, capture_output=True, text=True,
                          env=child_env(machine), timeout=120)
    assert proc.returncode == expect_rc, \
        f"eddy {args} exit {proc.returncode} (want {expect_rc}): {proc.stdout}{proc.stderr}"
    return [json.loads(line) for line in proc.stdout.splitlines()], proc.stderr


def incs(entity, prefix, n, start=0, type="Increment"):
    return [{"entity": entity, "type": type, "id": f"{prefix}-{i}", "data": {}}
            for i in range(start, start + n)]


def items_of(pk):
    out, kwargs = [], {}
    while True:
        page = DDB.query(TableName=TABLE, KeyConditionExpression="#p = :p",
                         ExpressionAttributeNames={"#p": "_pk"},
                         ExpressionAttributeValues={":p": {"S": pk}}, ConsistentRead=True,
                         **kwargs)
        out += page["Items"]
        if "LastEvaluatedKey" not in page:
            return out
        kwargs = {"ExclusiveStartKey": page["LastEvaluatedKey"]}


def state_item(pk):
    return DDB.get_item(TableName=TABLE, Key={"_pk": {"S": pk}, "_sk": {"S": "STATE"}},
                        ConsistentRead=True).get("Item")
