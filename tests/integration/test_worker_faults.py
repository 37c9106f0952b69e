"""`eddy worker` under faults against the local AWS: a proxy injecting 500s,
throttling and dropped connections; kill -9 mid-batch and a restart; two
workers on one queue with hot entities. Each time, every event is applied
exactly once and every stored state is the sequential fold of its records.
"""


import awsenv
import workerkit as wk
from faultproxy import FaultProxy, random_faults
from workerkit import Worker

ENV = awsenv.Env.current()


def setup(visibility_timeout=5):
    """A short visibility timeout brings back what a killed worker held, soon."""
    table = awsenv.create_table(ENV, awsenv.unique_name("faults"))
    q = awsenv.create_queue(ENV, awsenv.unique_name("faults-q"),
                            visibility_timeout=visibility_timeout)
    return table, q


def check_all(table, entities, want_records):
    total = 0
    for e in entities:
        _, recs = wk.check_entity(ENV, table, e)
        total += len(recs)
    assert total == want_records, (total, want_records)


def test_faults_through_proxy():
    table, q = setup()
    entities = [f"flt-{i}" for i in range(8)]
    bodies = wk.game_bodies(entities, 5)
    wk.send_all(ENV, q["url"], bodies)
    main = FaultProxy(ENV.endpoint("sqs"), random_faults(0.12), seed=11).start()
    ddb = FaultProxy(ENV.endpoint("dynamodb"), random_faults(0.12), seed=12).start()
    w = Worker(ENV, table, q["url"], AWS_ENDPOINT_URL=main.url,
               AWS_ENDPOINT_URL_DYNAMODB=ddb.url, AWS_MAX_ATTEMPTS=4)
    try:
        wk.wait_drained(ENV, q["url"], timeout_s=150)
    finally:
        wk.stop_ok(w)
        main.stop()
        ddb.stop()
    counts = main.counts() + ddb.counts()
    assert sum(n for k, n in counts.items() if k != "forwarded") > 0, counts
    check_all(table, entities, len(bodies))


def test_kill_9_then_restart():
    table, q = setup()
    entities = [f"k9-{i}" for i in range(10)]
    bodies = wk.game_bodies(entities, 6)
    wk.send_all(ENV, q["url"], bodies)
    w = Worker(ENV, table, q["url"])
    awsenv.wait_for(lambda: w.metrics().get("processed", 0) >= 5, timeout_s=60,
                    interval_s=0.02, what="some work done")
    w.kill()
    w2 = Worker(ENV, table, q["url"])
    try:
        wk.wait_drained(ENV, q["url"], timeout_s=150)
    finally:
        wk.stop_ok(w2)
    check_all(table, entities, len(bodies))


def test_two_workers_hot_entities():
    table, q = setup(visibility_timeout=60)
    entities = [f"hot-{i}" for i in range(5)]
    bodies = wk.game_bodies(entities, 100)  # 1,000 events
    wk.send_all(ENV, q["url"], bodies)
    a = Worker(ENV, table, q["url"], EDDY_COALESCE_MAX=8)
    b = Worker(ENV, table, q["url"], EDDY_COALESCE_MAX=8)
    try:
        wk.wait_drained(ENV, q["url"], timeout_s=270)
    finally:
        rcs = [a.stop(), b.stop()]
    assert rcs == [0, 0], (rcs, a.logs()[-2000:], b.logs()[-2000:])
    check_all(table, entities, len(bodies))
    ma, mb = a.metrics(), b.metrics()
    assert ma.get("received", 0) > 0 and mb.get("received", 0) > 0, (ma, mb)


def test_heartbeat_holds_a_slow_message():
    """A commit held up 3 times the queue's visibility timeout: the heartbeat
    keeps the message hidden, so no poller receives it a second time."""
    table, q = setup(visibility_timeout=2)
    wk.send_all(ENV, q["url"], [wk.body("hb-1", "InsertCoin")])
    ddb = FaultProxy(ENV.endpoint("dynamodb"),
                     [{"op": "TransactWriteItems", "match": {"body": "INBOUND/"},
                       "action": "delay", "ms": 6000, "times": 1}],
                     seed=13).start()
    w = Worker(ENV, table, q["url"], AWS_ENDPOINT_URL_DYNAMODB=ddb.url, EDDY_WAIT_SECONDS=1)
    try:
        awsenv.wait_for(lambda: w.metrics().get("processed", 0) == 1, timeout_s=60,
                        interval_s=0.1, what="the slow message applied")
        wk.wait_drained(ENV, q["url"])
    finally:
        wk.stop_ok(w)
        ddb.stop()
    assert ddb.counts().get("delay") == 1, ddb.counts()
    m = w.metrics()
    assert m["received"] == 1, f"the message was received {m['received']} times: {m}"
    assert m["heartbeats"] >= 1, m
    check_all(table, ["hb-1"], 1)


WorkerFaultsTest = awsenv.test_case("WorkerFaultsTest", [
    test_faults_through_proxy,
    test_kill_9_then_restart,
    test_two_workers_hot_entities,
    test_heartbeat_holds_a_slow_message,
])


if __name__ == "__main__":
    awsenv.main()
