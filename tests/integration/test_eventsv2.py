"""The local AWS's EventBridge Custom Event Bus (tools/eventsv2.py).

Two kinds of checks:
  - the service's rules on their own (no server), with a fake delivery and a
    fake clock: deduplication within 5 minutes and not after, per-group order
    to a FIFO subscriber, filters, content-based deduplication, refusals
    checked against botocore's model;
  - over HTTP, against the plain, auth and tls local AWS: botocore's own
    eventbridgev2 client creates a bus, a FIFO queue and a FIFO subscriber,
    then eddy's C client (eb2_driver) publishes through it: every group's
    events arrive once and in order, a repeat is answered DEDUPLICATED and
    not delivered, an id over 128 characters is refused by the model, and
    with SigV4 verification on a wrong secret is refused.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

from botocore.exceptions import ClientError

import awsenv

sys.path.insert(0, str(Path(os.environ["EDDY_SOURCE_ROOT"]) / "tools"))
import eventsv2  # noqa: E402

DRIVER = os.environ.get("EDDY_EB2_DRIVER", "")
ROLE = "arn:aws:iam::123456789012:role/eddy-subscriber"


# --- the rules, without a server --------------------------------------------


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def service():
    sent, clock = [], Clock()
    svc = eventsv2.EventsV2(lambda *a: sent.append(a), clock=clock)
    return svc, sent, clock, eventsv2._model()


def fifo_subscriber(svc, model, bus_arn, pattern='{"source":["eddy.test"]}', scope="METADATA"):
    return svc.call("CreateSubscriber", {
        "Name": "sub", "EventBusArn": bus_arn, "Type": "FIFO",
        "InvokeConfiguration": {"RoleArn": ROLE,
                                "TargetArn": "arn:aws:sqs:us-east-1:123456789012:q.fifo"},
        "FilterConfiguration": {"Filters": [{"Pattern": pattern, "Scope": scope}]},
    }, model)


def entry(group, dedup, n, source="eddy.test"):
    e = {"Source": source, "DetailType": "T", "Detail": json.dumps({"n": n})}
    meta = {}
    if group:
        meta["EventGroupId"] = group
    if dedup:
        meta["DeduplicationId"] = dedup
    if meta:
        e["SystemMetadata"] = meta
    return e


def test_dedupe_window_and_order():
    svc, sent, clock, model = service()
    bus = svc.call("CreateEventBus", {"Name": "b"}, model)["EventBusArn"]
    assert eventsv2.re.fullmatch(model.shape_for("EventBusArn").metadata["pattern"], bus)
    fifo_subscriber(svc, model, bus)
    put = {"EventBusArn": bus, "Entries": [entry("g1", "a", 1), entry("g2", "b", 2),
                                           entry("g1", "c", 3)]}
    out = svc.call("PutEvents", put, model)
    assert [e["SuccessCode"] for e in out["Entries"]] == ["PUBLISHED"] * 3
    assert [(s[2], json.loads(s[1])["detail"]["n"]) for s in sent] == [
        ("g1", 1), ("g2", 2), ("g1", 3)]
    clock.now += 299.0
    again = svc.call("PutEvents", {"EventBusArn": bus, "Entries": [entry("g1", "a", 1)]}, model)
    assert again["Entries"][0]["SuccessCode"] == "DEDUPLICATED"
    assert again["Entries"][0]["EventId"] == out["Entries"][0]["EventId"]
    assert len(sent) == 3
    clock.now += 1.0  # 300 s after the first: the window is over
    late = svc.call("PutEvents", {"EventBusArn": bus, "Entries": [entry("g1", "a", 1)]}, model)
    assert late["Entries"][0]["SuccessCode"] == "PUBLISHED"
    assert len(sent) == 4


def test_filters_content_dedupe_and_refusals():
    svc, sent, clock, model = service()
    bus = svc.call("CreateEventBus", {"Name": "b"}, model)["EventBusArn"]
    fifo_subscriber(svc, model, bus, '{"n":[2]}', "DATA")
    put = {"EventBusArn": bus, "Entries": [entry("g", None, 1), entry("g", None, 2)],
           "DeduplicationConfiguration": {"DeduplicationType": "CONTENT_BASED"}}
    svc.call("PutEvents", put, model)
    assert [json.loads(s[1])["detail"]["n"] for s in sent] == [2]
    out = svc.call("PutEvents", put, model)
    assert [e["SuccessCode"] for e in out["Entries"]] == ["DEDUPLICATED"] * 2
    refusals = [
        {"EventBusArn": bus, "Entries": [entry("g" * 129, "d", 1)]},
        {"EventBusArn": bus, "Entries": [entry("g", "d" * 129, 1)]},
        {"EventBusArn": bus, "Entries": [entry("g", "d", i) for i in range(101)]},
        {"EventBusArn": bus, "Entries": []},
        {"EventBusArn": "orders", "Entries": [entry("g", "d", 1)]},
        {"EventBusArn": bus, "Entries": [dict(entry("g", "d", 1), TraceHeader="x")]},
        {"EventBusArn": bus, "Entries": [dict(entry("g", "d", 1), Detail="x" * 1048577)]},
    ]
    for bad in refusals:
        try:
            svc.call("PutEvents", bad, model)
        except eventsv2.ApiError as err:
            assert err.code == "InvalidInputException", err.code
            continue
        raise AssertionError(f"accepted {str(bad)[:120]}")
    try:
        svc.call("PutEvents", {"EventBusArn": bus.replace("/b/", "/c/"),
                               "Entries": [entry("g", "d", 1)]}, model)
        raise AssertionError("a bus that does not exist was accepted")
    except eventsv2.ApiError as err:
        assert err.code == "ResourceNotFoundException"


# --- over HTTP, with eddy's client ------------------------------------------------


def eb2(env):
    return env.client("eventbridgev2")


def setup(env):
    """A bus and a FIFO queue behind a FIFO subscriber; returns (bus_arn, queue)."""
    client = eb2(env)
    bus = client.create_event_bus(Name=awsenv.unique_name("bus"))["EventBusArn"]
    assert client.describe_event_bus(EventBusArn=bus)["State"] == "ACTIVE"
    queue = awsenv.create_queue(env, awsenv.unique_name("sub"), fifo=True)
    client.create_subscriber(
        Name=awsenv.unique_name("sub"), EventBusArn=bus, Type="FIFO",
        InvokeConfiguration={"RoleArn": ROLE, "TargetArn": queue["arn"]},
        FilterConfiguration={"Filters": [{"Pattern": '{"source":["eddy.test"]}',
                                          "Scope": "METADATA"}]})
    return bus, queue


def drive(env, bus, entries):
    proc = subprocess.run([DRIVER, bus], input=json.dumps(entries), capture_output=True,
                          text=True, env={**os.environ, **env.values}, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def driver_entries(groups, per_group, dedup=lambda g, i: f"{g}/{i}"):
    return [{"source": "eddy.test", "detail_type": "T", "group": g, "dedup": dedup(g, i),
             "detail": json.dumps({"g": g, "i": i})}
            for i in range(per_group) for g in groups]


def check_publish(env):
    bus, queue = setup(env)
    entries = driver_entries(["a", "b", "c"], 4)
    out = drive(env, bus, entries)
    assert out["err"] == "EDDY_EOK", out
    assert [e["ok"] and not e["deduplicated"] for e in out["entries"]] == [True] * 12
    again = drive(env, bus, entries[:5])  # a re-publish after a crash
    assert [e["deduplicated"] for e in again["entries"]] == [True] * 5
    bodies = awsenv.receive_all(env, queue["url"], 13, timeout_s=2)
    got = [json.loads(b)["detail"] for b in bodies]
    assert len(got) == 12, got
    for g in "abc":
        assert [d["i"] for d in got if d["g"] == g] == [0, 1, 2, 3]
    long_group = drive(env, bus, [dict(entries[0], group="g" * 129)])
    assert long_group["err"] == "EDDY_ELIMIT", long_group


def test_plain():
    env = awsenv.Env.current()
    check_publish(env)
    client = eb2(env)
    try:
        client.put_events(EventBusArn="arn:aws:events:us-east-1:123456789012:event-busv2/"
                                      "nope/abcdefghijklmnopqrstuvwxy",
                          Entries=[{"Source": "s", "DetailType": "t", "Detail": "{}"}])
        raise AssertionError("a missing bus was accepted")
    except ClientError as err:
        assert err.response["Error"]["Code"] == "ResourceNotFoundException"


def test_auth():
    env = awsenv.Env.variant("auth")
    check_publish(env)
    bus, _ = setup(env)
    secret = env.values["AWS_SECRET_ACCESS_KEY"]
    wrong = awsenv.Env(dict(env.values, AWS_SECRET_ACCESS_KEY=secret[:-1] + (
        "A" if secret[-1] != "A" else "B")))
    out = drive(wrong, bus, driver_entries(["a"], 1))
    assert out["err"] == "EDDY_EAUTH", out


def test_tls():
    check_publish(awsenv.Env.variant("tls"))


EventsV2Test = awsenv.test_case("EventsV2Test", [
    test_dedupe_window_and_order,
    test_filters_content_dedupe_and_refusals,
    test_plain,
    test_auth,
    test_tls,
])


if __name__ == "__main__":
    awsenv.main()
