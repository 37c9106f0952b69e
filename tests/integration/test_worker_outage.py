"""`eddy worker` through an outage of DynamoDB: every connection refused, and
separately every call answered with a 500.

The queue has a short visibility timeout and a redrive policy of 2 receives,
so a worker that let the failed commits use up the receive count would move
valid messages to the DLQ within seconds. The store's circuit breaker keeps
them in hand instead, stops receiving, probes, and resumes: the DLQ stays
empty and every event is applied exactly once (each entity's state is the
replay of its records, no event id twice).

As a test (tools/test) the outage lasts 15 s over 120 events. Run alone it
measures the full scenario and prints one JSON line per kind of outage:

  tests/integration/with-local-aws --python -- \\
      tests/integration/test_worker_outage.py --events 1000 --outage 120

(--entities N, --visibility S, --max-receive N, --kinds refused,5xx,throttled:
throttled answers every call with ThrottlingException). It
reports the messages in the DLQ, the events recorded against those sent,
whether any was applied twice, the seconds from the end of the outage to the
first commit, and the breaker's counts. It measures; only the test asserts,
and never on time.
"""

import argparse
import json
import sys
import threading
import time

import awsenv
import workerkit as wk
from faultproxy import FaultProxy
from workerkit import Worker

ENV = awsenv.Env.current()

FAULTS = {
    "5xx": [{"name": "500", "op": "*", "action": "status", "status": 500,
             "code": "InternalServerError", "message": "injected outage"}],
    "throttled": [{"name": "throttle", "op": "*", "action": "status", "status": 400,
                   "code": "ThrottlingException", "message": "Rate exceeded (injected)"}],
}


def dlq_count(url):
    a = ENV.sqs().get_queue_attributes(QueueUrl=url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return int(a["ApproximateNumberOfMessages"]) + int(a["ApproximateNumberOfMessagesNotVisible"])


def records(table, entities):
    """(records in all, whether every entity is its replay with no event twice)."""
    total, once = 0, True
    for e in entities:
        try:
            _, recs = wk.check_entity(ENV, table, e)
        except AssertionError:
            once = False
            recs = wk.inbound(ENV, table, e)
        total += len(recs)
    return total, once


def first_commit_after(proxy, t0):
    """Seconds from t0 to the first TransactWriteItems answered 200 after it."""
    times = [c["t"] for c in proxy.journal()
             if c["op"] == "TransactWriteItems" and c.get("status") == 200
             and "fault" not in c and c["t"] > t0]
    return round(min(times) - t0, 2) if times else None


def send_spread(url, bodies, seconds):
    """Send bodies in batches of 10, evenly over `seconds` (a thread's body)."""
    batches = [bodies[i:i + 10] for i in range(0, len(bodies), 10)]
    start = time.monotonic()
    for i, batch in enumerate(batches):
        time.sleep(max(0.0, start + seconds * i / len(batches) - time.monotonic()))
        wk.send_all(ENV, url, batch)


def outage_run(kind, events=120, entities=12, outage_s=15.0, visibility=6, max_receive=2,
               first=0.2):
    """A flow of `events`: a share `first` of them is sent and processed, then
    DynamoDB goes down for outage_s while the rest is sent over the first half
    of the outage, and comes back. Returns the numbers."""
    table = awsenv.create_table(ENV, awsenv.unique_name("outage"))
    dlq = awsenv.create_queue(ENV, awsenv.unique_name("outage-dlq"))
    q = awsenv.create_queue(ENV, awsenv.unique_name("outage-q"), dlq=dlq["url"],
                            max_receive_count=max_receive, visibility_timeout=visibility)
    names = [f"out-{i}" for i in range(entities)]
    bodies = wk.game_bodies(names, max(1, events // (2 * entities)))
    cut = int(len(bodies) * first)
    wk.send_all(ENV, q["url"], bodies[:cut])
    proxy = FaultProxy(ENV.endpoint("dynamodb")).start()
    w = Worker(ENV, table, q["url"], AWS_ENDPOINT_URL_DYNAMODB=proxy.url,
               EDDY_DLQ_URL=dlq["url"])
    try:
        awsenv.wait_for(lambda: w.metrics().get("processed", 0) >= cut, timeout_s=300,
                        interval_s=0.1, what="the first events processed")
        processed_before = w.metrics().get("processed", 0)
        if kind == "refused":
            proxy.refuse()
        else:
            proxy.set_rules(FAULTS[kind])
        sender = threading.Thread(target=send_spread,
                                  args=(q["url"], bodies[cut:], outage_s / 2))
        sender.start()
        time.sleep(outage_s)
        sender.join()
        if kind == "refused":
            proxy.accept()
        else:
            proxy.set_rules([])
        recovered = time.monotonic()
        wk.wait_drained(ENV, q["url"], timeout_s=600)
        drained_s = round(time.monotonic() - recovered, 1)
    finally:
        rc = w.stop()
        proxy.stop()
    total, once = records(table, names)
    m = w.metrics()
    return {"kind": kind, "events": len(bodies), "outage_s": outage_s,
            "visibility_s": visibility, "max_receive_count": max_receive,
            "processed_before_outage": processed_before,
            "dlq": dlq_count(dlq["url"]), "recorded": total, "applied_once": once,
            "resume_s": first_commit_after(proxy, recovered), "drained_after_s": drained_s,
            "breaker_opened": m.get("breaker_opened", 0),
            "breaker_probes": m.get("breaker_probes", 0), "held": m.get("held", 0),
            "received": m.get("received", 0), "worker_exit": rc,
            "logs": w.logs()}


def check(r):
    logs = r.pop("logs")
    assert r["dlq"] == 0, f"{r['dlq']} valid message(s) in the DLQ: {r}"
    assert r["recorded"] == r["events"] and r["applied_once"], r
    assert r["worker_exit"] == 0, (r, logs[-3000:])
    assert r["breaker_opened"] >= 1 and r["held"] >= 1, r
    assert "circuit breaker open" in logs and "circuit breaker closed" in logs, logs[-3000:]


def test_dynamodb_refused():
    check(outage_run("refused"))


def test_dynamodb_5xx():
    check(outage_run("5xx"))


def measure(argv):
    ap = argparse.ArgumentParser(description="eddy worker through a DynamoDB outage")
    ap.add_argument("--events", type=int, default=1000)
    ap.add_argument("--entities", type=int, default=50)
    ap.add_argument("--outage", type=float, default=120.0, help="seconds")
    ap.add_argument("--visibility", type=int, default=30, help="queue visibility timeout, s")
    ap.add_argument("--max-receive", type=int, default=5, help="the redrive policy's count")
    ap.add_argument("--kinds", default="refused,5xx")
    args = ap.parse_args(argv)
    for kind in args.kinds.split(","):
        r = outage_run(kind, args.events, args.entities, args.outage, args.visibility,
                       args.max_receive)
        r.pop("logs")
        print(json.dumps(r), flush=True)


WorkerOutageTest = awsenv.test_case("WorkerOutageTest", [
    test_dynamodb_refused,
    test_dynamodb_5xx,
])


MEASURE_FLAGS = ("--events", "--outage", "--entities", "--visibility", "--max-receive",
                 "--kinds")

if __name__ == "__main__":
    if any(a.split("=")[0] in MEASURE_FLAGS for a in sys.argv[1:]):
        measure(sys.argv[1:])
    else:
        awsenv.main()
