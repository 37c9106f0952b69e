"""`eddy worker` end to end against the local AWS, driven by boto3.

PutEvents -> rule -> queue -> eddy -> DynamoDB; duplicates; rejections;
poison to the DLQ; a FIFO queue's per-group order; the health file; drain;
publishing on commit with the trace header; state history; three workers
racing for two entities. Every worker runs with its relay on.
"""

import json
import signal
import subprocess
import time
import uuid

import awsenv
import workerkit as wk
from faultproxy import FaultProxy
from workerkit import Worker

ENV = awsenv.Env.current()


def setup(fifo=False, dlq=False, **queue_args):
    table = awsenv.create_table(ENV, awsenv.unique_name("worker"))
    dlq_q = awsenv.create_queue(ENV, awsenv.unique_name("worker-dlq"), fifo=fifo) if dlq else None
    q = awsenv.create_queue(ENV, awsenv.unique_name("worker-q"), fifo=fifo, **queue_args)
    return table, q, dlq_q


def test_eventbridge_to_dynamodb():
    table, q, _ = setup()
    bus = awsenv.create_bus_to_queue(ENV, awsenv.unique_name("worker-bus"), q,
                                     ["InsertCoin", "PullHandle"])
    w = Worker(ENV, table, q["url"])
    try:
        events = ENV.events()
        entities = [f"eb-{i}" for i in range(4)]
        # one entity's events in order, one PutEvents call per round of games
        for g in range(3):
            for typ in ("InsertCoin", "PullHandle"):
                entries = [{"EventBusName": bus["bus"], "Source": "test.slots",
                            "DetailType": typ,
                            "Detail": json.dumps({"id": e, "userId": "u"})} for e in entities]
                assert events.put_events(Entries=entries)["FailedEntryCount"] == 0
                # standard queues may reorder; let a round land before the next
                awsenv.wait_for(lambda: wk.queue_count(ENV, q["url"]) == 0, timeout_s=30,
                                interval_s=0.1, what="round processed")
        outbound = 0
        for e in entities:
            st, recs = wk.check_entity(ENV, table, e)
            assert st["games"] == 3 and len(recs) == 6, (e, st, len(recs))
            outbound += st["games"] + st["wins"]  # a GameResult each, a Payout per win
        assert awsenv.wait_for(lambda: (w.dir / "health").exists(), what="health file")
        hc = subprocess.run([str(wk.EDDY), "healthcheck"], env=w.env, capture_output=True)
        assert hc.returncode == 0, hc.stderr
    finally:
        wk.stop_ok(w)
    m = w.metrics()
    assert m["processed"] == 24 and m["received"] == 24, m
    # kept alive: connections are opened for calls in flight at once, not per call
    assert 2 <= m["connections"] < m["received"], m
    assert m["published"] >= outbound, (m, outbound)  # at least once (a sweep may overlap)
    assert wk.outbox_rows(ENV, table) == 0, "published entries left in the outbox"
    assert '"level":"info"' in w.logs()


def test_duplicates_applied_once():
    table, q, _ = setup()
    eid_coin, eid_pull = str(uuid.uuid4()), str(uuid.uuid4())
    coin = wk.body("dup-1", "InsertCoin", eid_coin)
    pull = wk.body("dup-1", "PullHandle", eid_pull)
    wk.send_all(ENV, q["url"], [coin, coin, coin])
    w = Worker(ENV, table, q["url"])
    try:
        wk.wait_drained(ENV, q["url"])
        wk.send_all(ENV, q["url"], [pull, pull])
        wk.wait_drained(ENV, q["url"])
        wk.send_all(ENV, q["url"], [coin])  # again, after it was applied long ago
        wk.wait_drained(ENV, q["url"])
    finally:
        wk.stop_ok(w)
    st, recs = wk.check_entity(ENV, table, "dup-1")
    assert [r["_eid"]["S"] for r in recs] == [eid_coin, eid_pull], recs
    assert st["seq"] == 2 and st["games"] == 1, st
    m = w.metrics()
    assert m["duplicates"] == 4 and m["processed"] == 2, m


def test_rejections_recorded():
    table, q, _ = setup()
    wk.send_all(ENV, q["url"], [wk.body("rej-1", "PullHandle")])
    w = Worker(ENV, table, q["url"])
    try:
        wk.wait_drained(ENV, q["url"])
        wk.send_all(ENV, q["url"], [wk.body("rej-1", "InsertCoin")])
        wk.wait_drained(ENV, q["url"])
        wk.send_all(ENV, q["url"], [wk.body("rej-1", "InsertCoin")])
        wk.wait_drained(ENV, q["url"])
    finally:
        wk.stop_ok(w)
    st, recs = wk.check_entity(ENV, table, "rej-1")
    reasons = [r.get("_rejected", {}).get("S") for r in recs]
    assert reasons == ["cannot pull handle", None, "cannot insert coin"], reasons
    assert st["seq"] == 3 and st["coin"] is True, st
    assert w.metrics()["rejected"] == 2


def test_poison_to_dlq():
    table, q, dlq = setup(dlq=True)
    bodies = {
        "not-json": "this is {not json",
        "no-entity": json.dumps({"id": "p1", "detail-type": "InsertCoin", "detail": {}}),
        "no-type": json.dumps({"id": "p2", "detail": {"id": "x"}}),
        "unknown-type": json.dumps({"id": "p4", "detail-type": "KickMachine",
                                    "detail": {"id": "x"}}),
        "over-size": json.dumps({"id": "p3", "detail-type": "InsertCoin",
                                 "detail": {"id": "x", "pad": "x" * 270000}}),
    }
    sqs = ENV.sqs()
    ids = {}
    for name, b in bodies.items():
        ids[sqs.send_message(QueueUrl=q["url"], MessageBody=b)["MessageId"]] = name
    wk.send_all(ENV, q["url"], [wk.body("ok-1", "InsertCoin")])
    w = Worker(ENV, table, q["url"], EDDY_DLQ_URL=dlq["url"])
    try:
        wk.wait_drained(ENV, q["url"], timeout_s=30)
    finally:
        wk.stop_ok(w)
    got = {}
    deadline = time.monotonic() + 10
    while len(got) < len(bodies) and time.monotonic() < deadline:
        for m in sqs.receive_message(QueueUrl=dlq["url"], MaxNumberOfMessages=10,
                                     WaitTimeSeconds=1, MessageAttributeNames=["All"]
                                     ).get("Messages", []):
            attrs = m.get("MessageAttributes", {})
            name = ids[attrs["eddy-message-id"]["StringValue"]]
            got[name] = (m["Body"], attrs["eddy-error"]["StringValue"])
            if name == "over-size":
                assert attrs["eddy-truncated"]["StringValue"] == str(len(bodies[name]))
    assert set(got) == set(bodies), got.keys()
    for name, (b, reason) in got.items():
        if name == "over-size":  # too big for any queue: cut to fit, length kept
            assert len(b) > 200000 and bodies[name].startswith(b), len(b)
        else:
            assert b == bodies[name], name
        assert reason, name
    assert "JSON" in got["not-json"][1] or "json" in got["not-json"][1], got["not-json"][1]
    assert "entity id" in got["no-entity"][1], got["no-entity"][1]
    assert "type" in got["no-type"][1], got["no-type"][1]
    assert "256 KB" in got["over-size"][1], got["over-size"][1]
    assert got["unknown-type"][1] == "unknown event type KickMachine", got["unknown-type"][1]
    assert wk.state(ENV, table, "ok-1")["seq"] == 1
    assert w.metrics()["poison"] == 5


def test_poison_copy_does_not_hide_valid_one():
    """One receive: a pull, a poison InsertCoin (a reserved field in its detail)
    and a valid InsertCoin under the same event id. The poison copy goes to the
    DLQ; the valid copy is applied, not dropped as a duplicate of it."""
    table, q, dlq = setup(dlq=True)
    pull = wk.body("rep-1", "PullHandle", "first-1")
    bad = json.loads(wk.body("rep-1", "InsertCoin", "X-1"))
    bad["detail"]["_pk"] = "oops"
    good = wk.body("rep-1", "InsertCoin", "X-1")
    wk.send_all(ENV, q["url"], [pull, json.dumps(bad), good])
    w = Worker(ENV, table, q["url"], EDDY_DLQ_URL=dlq["url"])
    try:
        wk.wait_drained(ENV, q["url"], timeout_s=30)
    finally:
        wk.stop_ok(w)
    st, recs = wk.check_entity(ENV, table, "rep-1")
    assert [r["_eid"]["S"] for r in recs] == ["first-1", "X-1"], recs
    assert st["coin"] and st["seq"] == 2, st
    got = ENV.sqs().receive_message(QueueUrl=dlq["url"], MaxNumberOfMessages=10,
                                    WaitTimeSeconds=1, MessageAttributeNames=["All"])
    msgs = got.get("Messages", [])
    assert len(msgs) == 1 and json.loads(msgs[0]["Body"]) == bad, msgs
    assert "_pk" in msgs[0]["MessageAttributes"]["eddy-error"]["StringValue"], msgs
    m = w.metrics()
    assert m["poison"] == 1 and m.get("duplicates", 0) == 0, m


def test_fifo_keeps_group_order():
    table, q, _ = setup(fifo=True)
    # every group is one entity: a strict alternation that only its order makes valid
    entities = [f"fifo-{i}" for i in range(3)]
    bodies = wk.game_bodies(entities, 8)
    wk.send_all(ENV, q["url"], bodies, fifo_group=lambda b: json.loads(b)["detail"]["id"])
    w = Worker(ENV, table, q["url"], EDDY_COALESCE_MAX=3)
    try:
        wk.wait_drained(ENV, q["url"], timeout_s=60)
    finally:
        wk.stop_ok(w)
    for e in entities:
        st, recs = wk.check_entity(ENV, table, e)
        assert not any("_rejected" in r for r in recs), f"{e}: out of order"
        assert st["games"] == 8, st
        sent = [json.loads(b)["id"] for b in bodies if json.loads(b)["detail"]["id"] == e]
        assert [r["_eid"]["S"] for r in recs] == sent


def test_sigterm_under_load_exits_in_time():
    table, q, _ = setup()
    entities = [f"term-{i}" for i in range(10)]
    bodies = wk.game_bodies(entities, 4)
    wk.send_all(ENV, q["url"], bodies)
    w = Worker(ENV, table, q["url"], EDDY_DRAIN_SECONDS=10, EDDY_WAIT_SECONDS=20)
    awsenv.wait_for(lambda: w.metrics().get("processed", 0) > 0 or
                    "applied" in w.logs(), timeout_s=30, interval_s=0.05, what="work started")
    t0 = time.monotonic()
    rc = w.stop(signal.SIGTERM, timeout=15)
    took = time.monotonic() - t0
    # exit 0 is the proof of "in time": past EDDY_DRAIN_SECONDS the worker exits 1
    assert rc == 0, f"exit {rc}\n{w.logs()[-2000:]}"
    print(f"     drained and exited in {took:.2f} s (budget 10 s)", flush=True)
    # nothing lost: a second worker finishes what was released
    w2 = Worker(ENV, table, q["url"])
    try:
        wk.wait_drained(ENV, q["url"], timeout_s=120)
    finally:
        wk.stop_ok(w2)
    total = 0
    for e in entities:
        st, recs = wk.check_entity(ENV, table, e)
        total += len(recs)
    assert total == len(bodies), (total, len(bodies))


def test_relay_publishes_with_trace_header():
    """Publish on commit: the GameResult of a pull reaches a subscriber's queue
    at once, and its PutEvents entry carries the X-Ray trace header of the
    SQS message that caused it."""
    table, q, _ = setup()
    bus = awsenv.unique_name("relay-bus")
    downstream = awsenv.create_queue(ENV, awsenv.unique_name("relay-down"))
    events = ENV.events()
    events.create_event_bus(Name=bus)
    events.put_rule(Name=f"{bus}-out", EventBusName=bus,
                    EventPattern=json.dumps({"source": ["eddy.machine"]}))
    events.put_targets(Rule=f"{bus}-out", EventBusName=bus,
                       Targets=[{"Id": "down", "Arn": downstream["arn"]}])
    trace = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
    sqs = ENV.sqs()
    sqs.send_message(QueueUrl=q["url"], MessageBody=wk.body("tr-1", "InsertCoin"))
    proxy = FaultProxy(ENV.endpoint("events"), [], seed=1).start()
    w = Worker(ENV, table, q["url"], EDDY_EVENT_BUS=bus, AWS_ENDPOINT_URL_EVENTBRIDGE=proxy.url,
               EDDY_RELAY_POLL_MS=60000)  # no sweep in time: only publish on commit
    try:
        wk.wait_drained(ENV, q["url"])
        sqs.send_message(QueueUrl=q["url"], MessageBody=wk.body("tr-1", "PullHandle"),
                         MessageSystemAttributes={"AWSTraceHeader": {
                             "DataType": "String", "StringValue": trace}})
        got = [json.loads(b) for b in awsenv.receive_all(ENV, downstream["url"], 1, 30)]
        wk.wait_drained(ENV, q["url"])
    finally:
        wk.stop_ok(w)
        proxy.stop()
    assert got and got[0]["detail-type"] == "GameResult", got
    assert got[0]["detail"]["eddy"]["entity"] == "tr-1", got[0]
    sent = [e for c in proxy.journal() if c.get("op") == "PutEvents" for e in c["entries"]]
    results = [e for e in sent if e["detail_type"] == "GameResult"]
    assert results and all(e["trace_header"] == trace for e in results), sent
    assert wk.outbox_rows(ENV, table) == 0


def test_state_history():
    """EDDY_STATE_HISTORY=1: every commit also writes STATE/<seq>, the state as
    it was at that seq, next to the current STATE item."""
    table, q, _ = setup()
    bodies = wk.game_bodies(["sh-1"], 2)  # coin, pull, coin, pull: seq 1..4
    w = Worker(ENV, table, q["url"], EDDY_STATE_HISTORY=1)
    try:
        for b in bodies:  # one at a time: each its own commit
            wk.send_all(ENV, q["url"], [b])
            wk.wait_drained(ENV, q["url"])
    finally:
        wk.stop_ok(w)
    st, recs = wk.check_entity(ENV, table, "sh-1")
    assert st["seq"] == 4 and len(recs) == 4, (st, recs)
    all_items = wk.items(ENV, table, f"{wk.NS}/sh-1")
    by_sk = {i["_sk"]["S"]: i for i in all_items}
    versions = sorted(int(sk.split("/")[1]) for sk in by_sk if sk.startswith("STATE/"))
    assert versions == [1, 2, 3, 4], sorted(by_sk)
    current, last = dict(by_sk["STATE"]), dict(by_sk["STATE/4"])
    current.pop("_sk")
    last.pop("_sk")
    assert current == last, (current, last)
    assert by_sk["STATE/2"]["games"]["N"] == "1" and by_sk["STATE/1"]["isCoinInSlot"]["BOOL"]


def test_three_workers_race_for_hot_entities():
    """Three workers on a queue of two entities' events race for every step:
    each event is recorded once (the stored state is the replay of one record
    an event), the queue empties, and the workers that lost races paused
    their receives (contention, README "Several tasks on one queue")."""
    table, q, _ = setup()
    entities = ["hot-1", "hot-2"]
    bodies = wk.game_bodies(entities, 40)
    wk.send_all(ENV, q["url"], bodies)
    # at the least window from the start (one receive): a lost race pauses
    workers = [Worker(ENV, table, q["url"], EDDY_MAX_INFLIGHT=10) for _ in range(3)]
    try:
        wk.wait_drained(ENV, q["url"], timeout_s=120)
        recorded = sum(len(wk.check_entity(ENV, table, e)[1]) for e in entities)
        assert recorded == len(bodies), (recorded, len(bodies))
    finally:
        for w in workers:
            wk.stop_ok(w)
    ms = [w.metrics() for w in workers]
    conflicts = sum(m.get("conflicts", 0) for m in ms)
    pauses = sum(m.get("contention_pauses", 0) for m in ms)
    assert conflicts > 0, f"the workers did not race: {ms}"
    assert pauses > 0, (conflicts, pauses)
    assert sum(m.get("received", 0) for m in ms) >= len(bodies), ms


WorkerTest = awsenv.test_case("WorkerTest", [
    test_eventbridge_to_dynamodb,
    test_duplicates_applied_once,
    test_rejections_recorded,
    test_poison_to_dlq,
    test_poison_copy_does_not_hide_valid_one,
    test_fifo_keeps_group_order,
    test_sigterm_under_load_exits_in_time,
    test_relay_publishes_with_trace_header,
    test_state_history,
    test_three_workers_race_for_hot_entities,
])


if __name__ == "__main__":
    awsenv.main()
