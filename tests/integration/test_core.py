"""The event-sourced core against moto: the processor (through core_driver) and
`eddy get/history/replay [--repair]`. Sharing a table with a-h/stream is
test_interop.py's.

The machines: the counter of tests/core/counter_machine.c, built as
counter.so (Increment adds 1) and counter_v2.so (Increment adds 2, the "new
rules" replay must notice), and the built-in slot machine.

Paths come from the environment (set by tests/integration/meson.build):
EDDY_CORE_DRIVER, EDDY_BIN, EDDY_COUNTER_SO, EDDY_COUNTER_V2_SO.
"""

import json
import os
import subprocess

import awsenv

DRIVER = os.environ["EDDY_CORE_DRIVER"]
EDDY = os.environ["EDDY_BIN"]
COUNTER = os.environ["EDDY_COUNTER_SO"]
COUNTER_V2 = os.environ["EDDY_COUNTER_V2_SO"]

ENV = awsenv.Env.current()
DDB = ENV.dynamodb()
TABLE = None  # one table per test, deleted after it: moto copies every table per transaction


def with_table(test):
    def run():
        global TABLE
        TABLE = awsenv.create_table(ENV, awsenv.unique_name("core"))
        try:
            test()
        finally:
            DDB.delete_table(TableName=TABLE)
    run.__name__ = test.__name__
    return run


def child_env(machine, **extra):
    env = dict(os.environ)
    env.update(ENV.values)
    env.update({"EDDY_TABLE": TABLE, "EDDY_MACHINE": machine, "EDDY_LOG_LEVEL": "warn"})
    env.update({k: str(v) for k, v in extra.items()})
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


def test_two_processes_no_lost_update():
    """Two OS processes, 250 increments each, one entity: the count is 500."""
    entity = awsenv.unique_name("hot")
    procs = []
    for name in ("p1", "p2"):
        procs.append(subprocess.Popen(
            [DRIVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, env=child_env(COUNTER, EDDY_COALESCE_MAX=25, EDDY_OCC_RETRIES=1000)))
    for p, name in zip(procs, ("p1", "p2")):
        p.stdin.write(events_text(incs(entity, name, 250, type="Tick")))
        p.stdin.close()
    outs = [(p.stdout.read(), p.stderr.read()) for p in procs]
    for p in procs:
        p.wait(timeout=600)
    conflicts = 0
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err[-2000:]
        results = [json.loads(line) for line in out.splitlines()]
        assert len(results) == 250
        assert all(r["result"] == "applied" for r in results), results[:3]
        conflicts += json.loads(err.strip().splitlines()[-1])["conflicts"]
    item = state_item(f"counter/{entity}")
    assert item["count"]["N"] == "500", item
    inbound = [i for i in items_of(f"counter/{entity}") if i["_sk"]["S"].startswith("INBOUND/")]
    assert len(inbound) == 500
    # every step is one _seq: the steps written are exactly 1.._seq
    seqs = {int(i["_seq"]["N"]) for i in inbound}
    assert seqs == set(range(1, int(item["_seq"]["N"]) + 1))
    assert conflicts > 0, "the two processes never met: the test proves nothing"
    print(f"     two processes: {conflicts} conflicts, final _seq {item['_seq']['N']}")


def test_duplicate_applied_once():
    entity = awsenv.unique_name("dup")
    first, _, _ = drive(incs(entity, "d", 2))
    assert [first[f"d-{i}"]["result"] for i in range(2)] == ["applied", "applied"]
    # d-1 again (a redelivery), and twice within one batch
    again = incs(entity, "d", 2, start=1) + incs(entity, "d", 1, start=2)
    drive(again, EDDY_COALESCE_MAX=16)
    second = [(r["id"], r["result"]) for r in drive.lines]
    assert second == [("d-1", "duplicate"), ("d-2", "applied"), ("d-2", "duplicate")], second
    assert state_item(f"counter/{entity}")["count"]["N"] == "3"


def test_coalesced_commit_of_ten():
    entity = awsenv.unique_name("ten")
    results, stats, _ = drive(incs(entity, "t", 10), EDDY_COALESCE_MAX=10)
    assert stats["transactions"] == 1
    assert sorted((r["seq"], r["idx"]) for r in results.values()) == [(1, i) for i in range(10)]
    keys = sorted(i["_sk"]["S"] for i in items_of(f"counter/{entity}"))
    assert [k for k in keys if k.startswith("INBOUND/")] == \
        sorted(f"INBOUND/1/{i}/Increment" for i in range(10))
    item = state_item(f"counter/{entity}")
    assert (item["_seq"]["N"], item["count"]["N"]) == ("1", "10")


def test_over_limit_errors():
    entity = awsenv.unique_name("limits")
    events = [
        {"entity": entity, "type": "Increment", "id": "big", "data": {"blob": "y" * 420000}},
        {"entity": entity, "type": "Emit", "id": "many", "data": {"n": 60, "size": 1}},
        {"entity": entity, "type": "Emit", "id": "wide", "data": {"n": 1, "size": 300000}},
        {"entity": entity, "type": "Increment", "id": "fine", "data": {}},
    ]
    results, _, _ = drive(events, EDDY_COALESCE_MAX=16)
    assert results["big"]["result"] == "failed" and "400 KB" in results["big"]["reason"]
    assert results["many"]["result"] == "failed" and "100-item" in results["many"]["reason"]
    assert results["wide"]["result"] == "failed" and "256 KB" in results["wide"]["reason"]
    assert results["fine"]["result"] == "applied"
    written = {i.get("_eid", {}).get("S") for i in items_of(f"counter/{entity}")}
    assert "fine" in written and not written & {"big", "many", "wide"}


def test_bad_input():
    entity = awsenv.unique_name("bad")
    DDB.put_item(TableName=TABLE, Item={
        "_pk": {"S": f"counter/{entity}"}, "_sk": {"S": "STATE"}, "_seq": {"N": "3"},
        "id": {"S": entity}, "count": {"S": "three"}})
    _, _, err = drive(incs(entity, "b", 1), expect_rc=1)
    assert f"counter/{entity}" in err and "count" in err, err
    assert state_item(f"counter/{entity}")["_seq"]["N"] == "3"
    _, err = eddy(["get", "bad\x01id"], expect_rc=2)
    assert "control character" in err
    _, err = eddy(["get", "x" * 1025], expect_rc=2)
    assert "1024" in err
    # ids with '/' are fine: nothing splits keys
    slashed = awsenv.unique_name("a/b/c")
    drive(incs(slashed, "s", 2))
    lines, _ = eddy(["get", slashed])
    assert lines[0]["id"] == slashed and lines[0]["state"]["count"] == 2
    refused, _, _ = drive([{"entity": slashed, "type": "Nope", "id": "n1", "data": {}}])
    assert refused["n1"]["result"] == "rejected" and "unknown event type" in refused["n1"]["reason"]


def test_replay_and_repair():
    entity = awsenv.unique_name("replay")
    events = incs(entity, "r", 5) + [
        {"entity": entity, "type": "Refuse", "id": "r-refuse", "data": {}},
        {"entity": entity, "type": "Draw", "id": "r-draw-1", "data": {}},
        {"entity": entity, "type": "Draw", "id": "r-draw-2", "data": {}},
    ]
    drive(events, EDDY_COALESCE_MAX=3)
    lines, _ = eddy(["replay", entity])
    assert lines[-1]["equal"] is True and lines[-1]["events"] == 8, lines
    history, _ = eddy(["history", entity])
    kinds = [h["kind"] for h in history]
    assert kinds.count("inbound") == 8 and kinds[-1] == "state"
    assert any(h.get("rejected") == "refused on purpose" for h in history)
    # the new rules: replay sees the divergence
    lines, _ = eddy(["replay", entity], machine=COUNTER_V2, expect_rc=1)
    diffs = {d["diff"] for d in lines[:-1]}
    assert diffs == {"state", "outbound"}, lines
    state_diff = next(d for d in lines if d["diff"] == "state")
    assert state_diff["replayed"]["count"] == state_diff["stored"]["count"] + 5
    # the new rules contradict the Counted events recorded (and published):
    # --repair says so and writes nothing until told to go ahead
    before = int(state_item(f"counter/{entity}")["_seq"]["N"])
    _, err = eddy(["replay", entity, "--repair"], machine=COUNTER_V2, expect_rc=5)
    assert "contradict" in err and int(state_item(f"counter/{entity}")["_seq"]["N"]) == before
    # --repair --contradict writes it as the next version; replay is then equal
    lines, _ = eddy(["replay", entity, "--repair", "--contradict"], machine=COUNTER_V2)
    assert lines[-1]["repaired"] is True and lines[-1]["seq"] == before + 1
    assert lines[-1]["contradicts"] == sum(1 for x in lines if x.get("diff") == "outbound"
                                           and x["stored"] is not None)
    eddy(["replay", entity], machine=COUNTER_V2)
    got, _ = eddy(["get", entity])
    assert got[0]["seq"] == before + 1
    assert got[0]["state"]["count"] == state_diff["replayed"]["count"]
    history, _ = eddy(["history", entity])
    assert any(h.get("type") == "eddy.Repair" for h in history)
    # later events build on the repaired state
    drive(incs(entity, "after", 1), machine=COUNTER_V2)
    eddy(["replay", entity], machine=COUNTER_V2)


def test_unreadable_record():
    """One record that does not read back: history shows it as such and goes
    on; replay names it and stops, writing nothing."""
    entity = awsenv.unique_name("unreadable")
    drive(incs(entity, "u", 3))
    bad_sk = "INBOUND/2/1/Increment"
    DDB.put_item(TableName=TABLE, Item={
        "_pk": {"S": f"counter/{entity}"}, "_sk": {"S": bad_sk}, "_seq": {"S": "two"},
        "_typ": {"S": "Increment"}, "_eid": {"S": "u-x"}})
    history, err = eddy(["history", entity])
    bad = [h for h in history if h["kind"] == "unreadable"]
    assert len(bad) == 1 and bad[0]["sk"] == bad_sk and "_seq" in bad[0]["error"], history
    assert [h["kind"] for h in history].count("inbound") == 3, history
    assert "1 unreadable record" in err, err
    before = state_item(f"counter/{entity}")
    lines, err = eddy(["replay", entity, "--repair"], expect_rc=3)
    assert lines == [] and bad_sk in err and "unreadable" in err, err
    assert state_item(f"counter/{entity}") == before


def test_slotmachine_replay_equal():
    entity = awsenv.unique_name("slot")
    events = []
    for i in range(20):
        events.append({"entity": entity, "type": "InsertCoin", "id": f"c{i}", "data": {}})
        events.append({"entity": entity, "type": "PullHandle", "id": f"p{i}",
                       "data": {"userId": "u1"}})
    events.append({"entity": entity, "type": "PullHandle", "id": "nocoin",
                   "data": {"userId": "u1"}})
    results, _, _ = drive(events, machine="slotmachine", EDDY_COALESCE_MAX=7)
    assert results["nocoin"]["result"] == "rejected"
    lines, _ = eddy(["replay", entity], machine="slotmachine")
    assert lines[-1]["equal"] is True
    got, _ = eddy(["get", entity], machine="slotmachine")
    st = got[0]["state"]
    assert st["games"] == 20 and st["wins"] + st["losses"] == 20


CoreTest = awsenv.test_case("CoreTest", [with_table(t) for t in (
    test_duplicate_applied_once,
    test_coalesced_commit_of_ten,
    test_over_limit_errors,
    test_bad_input,
    test_replay_and_repair,
    test_slotmachine_replay_equal,
    test_unreadable_record,
    test_two_processes_no_lost_update,
)])


if __name__ == "__main__":
    awsenv.main()
