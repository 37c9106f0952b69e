"""eddy and a-h/stream on one table, checked by a second program that follows
a-h/stream's store.go rules (streamstore.py).

- a round trip with a-h/stream's WithCodecTag("json") store;
- a state and events written by a-h/stream's default store (Go field names)
  are read, advanced (by the processor and by `eddy worker`) and replayed by
  eddy, and read back by a-h/stream;
- a history holding eddy's refusals and repairs reads without error by
  a-h/stream's QueryWithHistory rules, and eddy still reads the forms it
  wrote before (refusals and repairs under INBOUND/);
- replay reports a-h/stream's events as not reproducible, and --repair
  refuses them unless told to start after them;
- binary and set attributes survive an eddy commit.

Paths come from the environment (tests/integration/meson.build):
EDDY_CORE_DRIVER, EDDY_BIN, EDDY_BAG_SO.
"""

import json
import os
import subprocess

import awsenv
import corekit as ck
import streamstore as ss
import workerkit as wk
from corekit import DDB, DRIVER, ENV, child_env, items_of, state_item

BAG = os.environ["EDDY_BAG_SO"]
SLOT = "slotmachine"
ck.DEFAULTS["EDDY_COALESCE_MAX"] = 1

# what a program sharing the table with eddy registers: both names of the games
SLOT_INBOUND = {"InsertCoin": ss.INSERT_COIN, "PullHandle": ss.PULL_HANDLE}
SLOT_OUTBOUND = {"GamePlayed": ss.GAME_PLAYED, "PayoutMade": ss.PAYOUT_MADE,
                 "GameResult": ss.GAME_RESULT, "Payout": ss.PAYOUT}


def with_table(test):
    return ck.with_table(test, "interop")


def drive(events, machine=SLOT):
    """Run core_driver on events; return {event id: result line}."""
    text = "".join(json.dumps(e) + "\n" for e in events)
    proc = subprocess.run([DRIVER], input=text, capture_output=True, text=True,
                          env=child_env(machine), timeout=120)
    assert proc.returncode == 0, f"driver exit {proc.returncode}: {proc.stderr[-2000:]}"
    return {r["id"]: r for r in map(json.loads, proc.stdout.splitlines())}


def eddy(args, machine=SLOT, expect_rc=0):
    return ck.eddy(args, machine, expect_rc)


def ev(entity, typ, eid, **data):
    return {"entity": entity, "type": typ, "id": eid, "data": data}


def fields(item):
    return {k for k in item if not k.startswith("_")}


def go_machine(entity):
    return {"ID": entity, "Balance": 0, "Payout": 4, "WinChance": 0.18, "Games": 0, "Wins": 0,
            "Losses": 0, "IsCoinInSlot": False}


def go_games(store, entity, seq, st, n):
    """a-h/stream's example plays n games from st, all lost; returns seq."""
    for _ in range(n):
        st["IsCoinInSlot"] = True
        seq = store.put(entity, seq, ss.SLOT_MACHINE, st, [("InsertCoin", ss.INSERT_COIN, {})], [])
        st.update(IsCoinInSlot=False, Games=st["Games"] + 1, Losses=st["Losses"] + 1,
                  Balance=st["Balance"] + 1)
        seq = store.put(entity, seq, ss.SLOT_MACHINE, st,
                        [("PullHandle", ss.PULL_HANDLE, {"UserID": "go-user"})],
                        [("GamePlayed", ss.GAME_PLAYED, {"MachineID": entity, "Won": False})])
    return seq


def tamper(pk, field, value):
    """A wrong state behind eddy's back (what a bug would leave), _seq kept."""
    DDB.update_item(TableName=ck.TABLE, Key={"_pk": {"S": pk}, "_sk": {"S": "STATE"}},
                    UpdateExpression="SET #f = :v", ExpressionAttributeNames={"#f": field},
                    ExpressionAttributeValues={":v": {"N": str(value)}})


def test_json_codec_round_trip():
    """WithCodecTag("json"): eddy writes, a-h/stream advances, eddy advances that."""
    e = awsenv.unique_name("json")
    drive([ev(e, "InsertCoin", "e1"), ev(e, "PullHandle", "e2", userId="u")])
    store = ss.Store(DDB, ck.TABLE, "machine", codec="json")
    seq, st = store.get(e, ss.SLOT_MACHINE)
    assert seq == 2 and st["Games"] == 1 and st["Payout"] == 4 and st["WinChance"] == 0.18
    seq = go_games(store, e, seq, st, 1)
    assert fields(state_item(f"machine/{e}")) == {
        "id", "balance", "payout", "winChance", "games", "wins", "losses", "isCoinInSlot"}
    res = drive([ev(e, "InsertCoin", "e5"), ev(e, "PullHandle", "e6", userId="u")])
    assert (res["e5"]["seq"], res["e6"]["seq"]) == (5, 6), res
    got, _ = eddy(["get", e])
    assert got[0]["seq"] == 6 and got[0]["state"]["games"] == 3
    seq, st = store.get(e, ss.SLOT_MACHINE)
    assert seq == 6 and st["Games"] == 3 and st["IsCoinInSlot"] is False


def test_go_field_names():
    """The default store's Go field names: read, advanced and replayed by eddy."""
    e = awsenv.unique_name("go")
    pk = f"machine/{e}"
    store = ss.Store(DDB, ck.TABLE, "machine")  # no codec tag: a-h/stream's example
    seq = go_games(store, e, 0, go_machine(e), 1)
    assert {"Balance", "IsCoinInSlot"} <= fields(state_item(pk))
    res = drive([ev(e, "InsertCoin", "e3"), ev(e, "PullHandle", "e4", userId="u")])
    assert [(res[i]["result"], res[i]["seq"]) for i in ("e3", "e4")] == \
        [("applied", 3), ("applied", 4)], res
    # written back in the form the machine saves: no Go name is left
    item = state_item(pk)
    assert fields(item) == {"id", "balance", "payout", "winChance", "games", "wins", "losses",
                            "isCoinInSlot"}, item
    assert item["games"]["N"] == "2" and item["_seq"]["N"] == "4"
    # a-h/stream reads that (its decoder ignores case) and advances it again
    seq, st = store.get(e, ss.SLOT_MACHINE)
    assert seq == 4 and st["Games"] == 2 and st["ID"] == e, st
    st["IsCoinInSlot"] = True
    seq = store.put(e, seq, ss.SLOT_MACHINE, st, [("InsertCoin", ss.INSERT_COIN, {})], [])
    res = drive([ev(e, "PullHandle", "e6", userId="u")])
    assert (res["e6"]["result"], res["e6"]["seq"]) == ("applied", 6), res
    got, _ = eddy(["get", e])
    assert got[0]["state"]["games"] == 3
    # the whole history by a-h/stream's rules
    seq, st, inbound, outbound, _ = store.query_with_history(e, ss.SLOT_MACHINE, SLOT_INBOUND,
                                                             SLOT_OUTBOUND)
    assert seq == 6 and st["Games"] == 3
    assert [t for t, _ in inbound] == ["InsertCoin", "PullHandle"] * 3
    assert [x["UserID"] for t, x in inbound if t == "PullHandle"] == ["go-user", "u", "u"]
    history, _ = eddy(["history", e])
    assert any(h.get("data", {}).get("UserID") == "go-user" for h in history)
    # replay does not invent the games a-h/stream played: not reproducible
    lines, _ = eddy(["replay", e], expect_rc=4)
    nr = [(x["seq"], x["type"]) for x in lines if x.get("diff") == "not_reproducible"]
    assert nr == [(1, "InsertCoin"), (2, "PullHandle"), (5, "InsertCoin")], lines
    assert not [x for x in lines if x.get("diff") in ("state", "outbound", "outcome")], lines
    summary = lines[-1]
    assert (summary["equal"], summary["notReproducible"], summary["unchecked"]) == \
        (False, 3, 3), summary
    # and --repair refuses them, saying how to start after them
    before = state_item(pk)
    _, err = eddy(["replay", e, "--repair"], expect_rc=4)
    assert "no source event id" in err and "--after 5" in err, err
    assert state_item(pk) == before
    # starting after them needs a recorded state there; this store kept none
    _, err = eddy(["replay", e, "--after", "5"], expect_rc=3)
    assert "no state is recorded at seq 5" in err, err


def test_worker_advances_go_state():
    """`eddy worker` loads a state the default store wrote (it used to retry it into the DLQ)."""
    e = awsenv.unique_name("gow")
    store = ss.Store(DDB, ck.TABLE, "machine")
    go_games(store, e, 0, go_machine(e), 1)
    q = awsenv.create_queue(ENV, awsenv.unique_name("interop-q"))
    w = wk.Worker(ENV, ck.TABLE, q["url"])
    try:
        for typ in ("InsertCoin", "PullHandle"):
            wk.send_all(ENV, q["url"], [wk.body(e, typ)])
            wk.wait_drained(ENV, q["url"])
    finally:
        wk.stop_ok(w)
    item = state_item(f"machine/{e}")
    assert (item["_seq"]["N"], item["games"]["N"]) == ("4", "2"), item
    m = w.metrics()
    assert (m["processed"], m["poison"], m["retries"]) == (2, 0, 0), m


def test_repair_after_foreign_records():
    """With state versions (WithPersistStateHistory), --after starts past them."""
    e = awsenv.unique_name("after")
    pk = f"machine/{e}"
    store = ss.Store(DDB, ck.TABLE, "machine", history=True)
    go_games(store, e, 0, go_machine(e), 2)  # seq 1..4, STATE/1..4
    res = drive([ev(e, "InsertCoin", "c5"), ev(e, "PullHandle", "p6", userId="u"),
                 ev(e, "InsertCoin", "c7"), ev(e, "PullHandle", "p8", userId="u")])
    assert res["p8"]["seq"] == 8
    eddy(["replay", e], expect_rc=4)
    lines, _ = eddy(["replay", e, "--after", "4"])
    assert lines[-1]["equal"] is True and lines[-1]["events"] == 4 and lines[-1]["after"] == 4
    # a foreign record after the start is still not reproducible
    _, err = eddy(["replay", e, "--repair", "--after", "3"], expect_rc=4)
    assert "--after 4" in err
    # a wrong state: repaired from the state recorded at seq 4
    games = int(state_item(pk)["games"]["N"])
    tamper(pk, "balance", 1000)
    lines, _ = eddy(["replay", e, "--after", "4"], expect_rc=1)
    assert [x["diff"] for x in lines[:-1]] == ["state"], lines
    lines, _ = eddy(["replay", e, "--repair", "--after", "4"])
    assert lines[-1]["repaired"] is True and lines[-1]["seq"] == 9, lines
    item = state_item(pk)
    assert item["balance"]["N"] != "1000" and int(item["games"]["N"]) == games
    assert any(i["_sk"]["S"] == "REPAIR/9" for i in items_of(pk))
    # the repair is where a replay starts now
    lines, _ = eddy(["replay", e])
    assert lines[-1]["equal"] is True and lines[-1]["after"] == 9
    seq, _, inbound, _, versions = store.query_with_history(e, ss.SLOT_MACHINE, SLOT_INBOUND,
                                                            SLOT_OUTBOUND)
    assert seq == 9 and len(inbound) == 8 and len(versions) == 4


def test_refusals_and_repairs_read_by_stream():
    """eddy's own records are skipped by a-h/stream's history; old forms still read."""
    e, old = awsenv.unique_name("mixed"), awsenv.unique_name("old")
    for x in (e, old):
        drive([ev(x, "PullHandle", f"{x}-1", userId="u"), ev(x, "InsertCoin", f"{x}-2"),
               ev(x, "InsertCoin", f"{x}-3"), ev(x, "PullHandle", f"{x}-4", userId="u")])
    pk = f"machine/{e}"
    tamper(pk, "wins", 77)
    lines, _ = eddy(["replay", e, "--repair"])
    assert lines[-1]["repaired"] is True and lines[-1]["seq"] == 5
    # a-h/stream's QueryWithHistory: no error, and the refusals are not applied events
    store = ss.Store(DDB, ck.TABLE, "machine", codec="json")
    seq, st, inbound, outbound, _ = store.query_with_history(e, ss.SLOT_MACHINE, SLOT_INBOUND,
                                                             SLOT_OUTBOUND)
    assert seq == 5 and st["Wins"] != 77
    assert [t for t, _ in inbound] == ["InsertCoin", "PullHandle"], inbound
    assert [t for t, _ in outbound][0] == "GameResult"
    sks = sorted(i["_sk"]["S"] for i in items_of(pk))
    assert [k for k in sks if k.startswith(("INBOUND/", "REJECTED/", "REPAIR/"))] == \
        ["INBOUND/2/0/InsertCoin", "INBOUND/4/0/PullHandle", "REJECTED/1/0/PullHandle",
         "REJECTED/3/0/InsertCoin", "REPAIR/5"], sks
    history, _ = eddy(["history", e])
    assert sum(1 for h in history if h.get("rejected")) == 2
    assert any(h.get("type") == "eddy.Repair" for h in history)
    # the forms earlier versions wrote: refusals and repairs under INBOUND/
    for x in (e, old):
        for i in items_of(f"machine/{x}"):
            sk = i["_sk"]["S"]
            if sk.startswith(("REJECTED/", "REPAIR/")):
                DDB.delete_item(TableName=ck.TABLE, Key={"_pk": i["_pk"], "_sk": i["_sk"]})
                i["_sk"] = {"S": "INBOUND/" + sk.split("/", 1)[1] +
                            ("/0/eddy.Repair" if sk.startswith("REPAIR/") else "")}
                DDB.put_item(TableName=ck.TABLE, Item=i)
    lines, _ = eddy(["replay", old])
    assert lines[-1]["equal"] is True and lines[-1]["events"] == 4, lines
    lines, _ = eddy(["replay", e])
    assert lines[-1]["equal"] is True and lines[-1]["after"] == 5, lines


def test_binary_and_sets_survive():
    """B, SS, NS, BS written by a Go service keep their types through eddy's commits."""
    e = awsenv.unique_name("bag")
    pk = f"bag/{e}"
    stored = {"Photo": {"B": b"\x00\x01\x02\xff"}, "Tags": {"SS": ["a", "b"]},
              "Lucky": {"NS": ["7", "1.5"]}, "Blobs": {"BS": [b"\x00", b"\x01"]},
              "Meta": {"M": {"Keys": {"SS": ["k"]}, "N": {"N": "1"}}}}
    DDB.put_item(TableName=ck.TABLE, Item={
        "_pk": {"S": pk}, "_sk": {"S": "STATE"}, "_seq": {"N": "3"}, "_typ": {"S": "bag"},
        "_namespace": {"S": "bag"}, "ID": {"S": e}, "Touches": {"N": "2"}, **stored})
    res = drive([ev(e, "Touch", "t1")], machine=BAG)
    assert (res["t1"]["result"], res["t1"]["seq"]) == ("applied", 4), res
    item = state_item(pk)
    assert item["touches"] == {"N": "3"} and item["id"] == {"S": e}
    for name, av in stored.items():
        (t, v), = av.items()
        got = item[name]
        assert list(got) == [t], (name, got)
        if t in ("SS", "NS", "BS"):
            assert sorted(got[t]) == sorted(v), (name, got)
        else:
            assert got[t] == v, (name, got)
    # changed by the machine, and still a set
    res = drive([ev(e, "Set", "s1", field="Tags", value=["x", "y"])], machine=BAG)
    assert res["s1"]["result"] == "applied"
    item = state_item(pk)
    assert sorted(item["Tags"]["SS"]) == ["x", "y"] and item["Photo"]["B"] == b"\x00\x01\x02\xff"
    # a value the set cannot hold is refused with the reason, nothing written
    res = drive([ev(e, "Set", "s2", field="Tags", value=[])], machine=BAG)
    assert res["s2"]["result"] == "failed" and "string set (SS)" in res["s2"]["reason"], res
    assert state_item(pk)["_seq"]["N"] == "5"
    # the Go service reads its types back
    shape = ss.struct(("Photo", None, "bytes"), ("Tags", None, "stringset"),
                      ("Lucky", None, "numberset"), ("Blobs", None, "binaryset"))
    st = ss.decode(shape, state_item(pk))
    assert st["Photo"] == b"\x00\x01\x02\xff" and sorted(st["Lucky"]) == [1.5, 7.0]


InteropTest = awsenv.test_case("InteropTest", [with_table(t) for t in (
    test_json_codec_round_trip,
    test_go_field_names,
    test_worker_advances_go_state,
    test_repair_after_foreign_records,
    test_refusals_and_repairs_read_by_stream,
    test_binary_and_sets_survive,
)])


if __name__ == "__main__":
    awsenv.main()
