"""The event-sourced core against moto: the processor (through core_driver).
The store commands (`eddy get/history/replay [--repair]`) are
tests/cli/test_store.py's and sharing a table with a-h/stream is
test_interop.py's; the shared pieces (drive, eddy, a table per test) are in
corekit.py. The machine: the counter of tests/core/counter_machine.c
(counter.so, Increment adds 1).
"""

import json
import subprocess

import awsenv
import corekit as ck
from corekit import COUNTER, DDB, DRIVER, child_env, drive, eddy, events_text, incs, \
    items_of, state_item, with_table


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
    DDB.put_item(TableName=ck.TABLE, Item={
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


CoreTest = awsenv.test_case("CoreTest", [with_table(t) for t in (
    test_duplicate_applied_once,
    test_coalesced_commit_of_ten,
    test_over_limit_errors,
    test_bad_input,
    test_two_processes_no_lost_update,
)])


if __name__ == "__main__":
    awsenv.main()
