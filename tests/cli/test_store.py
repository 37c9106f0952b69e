"""The store commands against the local AWS: `eddy get`, `eddy history` and
`eddy replay [--repair [--contradict]]` over records the processor wrote
(through core_driver): replay equal under the same rules, a divergence under
new rules, a repair refused while it contradicts recorded outbound events and
written as the next version when told, and a record that does not read back.

The machines: the counter of tests/core/counter_machine.c, built as counter.so
(Increment adds 1) and counter_v2.so (Increment adds 2, the "new rules" replay
must notice), and the built-in slot machine. Paths come from the environment
(see tests/integration/meson.build and tests/integration/corekit.py).
"""

import os
import sys
from pathlib import Path

ROOT = Path(os.environ.get("EDDY_SOURCE_ROOT", Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(ROOT / "tests" / "integration"))
import awsenv  # noqa: E402
import corekit as ck  # noqa: E402
from corekit import COUNTER_V2, DDB, drive, eddy, incs, state_item, with_table  # noqa: E402


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
    DDB.put_item(TableName=ck.TABLE, Item={
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


StoreTest = awsenv.test_case("StoreTest", [with_table(t) for t in (
    test_replay_and_repair,
    test_slotmachine_replay_equal,
    test_unreadable_record,
)])


if __name__ == "__main__":
    awsenv.main()
