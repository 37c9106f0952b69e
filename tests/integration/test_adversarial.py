"""An adversarial corpus through `eddy worker` against the local AWS.

More than a hundred message bodies (the defects of issue 10 and their kin:
not JSON, truncated, deep nesting, huge strings, invalid UTF-8, NUL in ids,
odd numbers, reserved field names, ids that look like keys, ids at and past
their limits, repeated event ids with a poison copy) go to one queue with a
DLQ. Each must end either recorded (its event id is an _eid in the table) or
in the DLQ with an eddy-error; the ones whose fate is certain are checked
for it. A control entity, written before, is untouched.
"""

import json
import time

import awsenv
import workerkit as wk
from workerkit import Worker

ENV = awsenv.Env.current()
NS = wk.NS


NULL = object()  # a part that is there and null (None leaves it out)


def env(event_id, typ, detail, **extra):
    """An EventBridge envelope with exactly these parts (None: left out)."""
    b = {"version": "0", "source": "test.adversarial", "account": "123456789012",
         "time": "2026-01-01T00:00:00Z", "region": "us-east-1", "resources": []}
    if event_id is not None:
        b["id"] = None if event_id is NULL else event_id
    if typ is not None:
        b["detail-type"] = typ
    if detail is not None:
        b["detail"] = detail
    b.update(extra)
    return json.dumps(b)


def corpus():
    """[(name, body, expect)]: expect is "recorded", "dlq" or "either"."""
    c = []

    def add(name, body, expect):
        c.append((name, body, expect))

    coin = lambda e, i, **d: env(i, "InsertCoin", dict({"id": e}, **d))  # noqa: E731
    # well-formed events, several entities: recorded
    for i in range(12):
        add(f"valid-{i}", coin(f"adv-{i % 4}", f"adv-ok-{i}"), "recorded")
    add("pull-no-coin", env("adv-pull-1", "PullHandle", {"id": "adv-pull", "userId": "u"}),
        "recorded")  # refused by the machine: recorded with _rejected
    add("pull-no-user", env("adv-pull-2", "PullHandle", {"id": "adv-pull"}), "recorded")
    # issue 10 item 1: a poison copy and a valid copy of one event id, one receive
    add("repeat-first", env("adv-first-1", "PullHandle", {"id": "adv-rep", "userId": "u"}),
        "recorded")
    # (the poison copy is a duplicate instead when the valid one happens to go first)
    add("repeat-poison", coin("adv-rep", "adv-X-1", _pk="oops"), "either")
    add("repeat-valid", coin("adv-rep", "adv-X-1"), "recorded")
    # item 2: an id that is there but unusable
    for i, bad in enumerate([42, "", NULL, {"x": 1}, [1], True, 1.5]):
        add(f"event-id-{i}", env(bad, "InsertCoin", {"id": "adv-eid"}), "dlq")
    add("event-id-absent", env(None, "InsertCoin", {"id": "adv-noid"}), "recorded")
    # item 3: poison just under 256 KiB, and over it
    add("poison-near-limit", "x" * (256 * 1024 - 40), "dlq")
    add("poison-over-limit", coin("adv-big", "adv-big-1", pad="p" * 270000), "dlq")
    # item 4: ids at and past the limits their keys leave
    add("entity-990", coin("e" * 990, "adv-long-e"), "recorded")
    add("entity-991", coin("e" * 991, "adv-long-e2"), "dlq")
    add("entity-1024", coin("e" * 1024, "adv-long-e3"), "dlq")
    add("event-id-1018", coin("adv-long", "i" * 1018), "recorded")
    add("event-id-1019", coin("adv-long", "j" * 1019), "dlq")
    add("type-991", env("adv-long-t", "T" * 991, {"id": "adv-long"}), "dlq")
    # item 7: an empty map key at some depth
    add("empty-key-top", coin("adv-ek", "adv-ek-1", **{"": 1}), "dlq")
    add("empty-key-deep", coin("adv-ek", "adv-ek-2", m={"a": [{"": None}]}), "dlq")
    # item 8: deep nesting and exotic integers
    add("nest-100000", "[" * 100000, "dlq")
    add("nest-1001-objects", '{"a":' * 1001 + "1" + "}" * 1001, "dlq")
    add("nest-999-in-detail", env("adv-nest", "InsertCoin", {"id": "adv-n", "d": json.loads(
        "[" * 40 + "1" + "]" * 40)}), "dlq")  # over DynamoDB's 32 levels
    add("entity-1e21", '{"id":"adv-int-1","detail-type":"InsertCoin","detail":{"id":1e21}}',
        "recorded")
    add("entity-int-text", '{"id":"adv-int-2","detail-type":"InsertCoin",'
        '"detail":{"id":123456789012345678901234567890}}', "recorded")
    add("entity-float", '{"id":"adv-int-3","detail-type":"InsertCoin","detail":{"id":1.5}}',
        "dlq")
    add("entity-neg-zero", '{"id":"adv-int-4","detail-type":"InsertCoin","detail":{"id":-0}}',
        "recorded")
    # not JSON, truncated, trailing garbage
    for i, b in enumerate(["", " ", "not json", "{", "}", "[]", "null", "42", '"str"', "{'a':1}",
                           "{\"id\":\"x\",}", "\ufeff{}", "{\"a\":1} {\"b\":2}", "<xml/>",
                           "{\"id\":\"x\"", "{\"id\":\"x\",\"detail-type\":\"InsertCoin\"," +
                           "\"detail\":{\"id\":\"adv-t\"", "NaN", "Infinity", "-", "0x10"]):
        if b.strip() == "":
            continue  # SQS refuses an empty body
        add(f"not-json-{i}", b, "dlq")
    full = coin("adv-trunc", "adv-trunc-1")
    for cut in (1, 10, 40, len(full) // 2, len(full) - 1):
        add(f"truncated-{cut}", full[:cut], "dlq")
    # missing or wrong parts
    add("no-entity", env("adv-m1", "InsertCoin", {}), "dlq")
    add("no-type", env("adv-m2", None, {"id": "adv-m"}), "dlq")
    add("no-detail", env("adv-m3", "InsertCoin", None), "dlq")
    add("detail-array", env("adv-m4", "InsertCoin", [1, 2]), "dlq")
    add("detail-string", env("adv-m5", "InsertCoin", "x"), "dlq")
    add("type-number", env("adv-m6", 7, {"id": "adv-m"}), "dlq")
    add("type-empty", env("adv-m7", "", {"id": "adv-m"}), "dlq")
    add("type-unknown", env("adv-m8", "KickMachine", {"id": "adv-m"}), "dlq")
    add("entity-object", env("adv-m9", "InsertCoin", {"id": {"a": 1}}), "dlq")
    add("entity-null", env("adv-m10", "InsertCoin", {"id": None}), "dlq")
    add("entity-bool", env("adv-m11", "InsertCoin", {"id": False}), "dlq")
    add("entity-empty", env("adv-m12", "InsertCoin", {"id": ""}), "dlq")
    # NUL and control characters, invalid UTF-8 (lone surrogates) in ids and data
    add("nul-entity", '{"id":"adv-c1","detail-type":"InsertCoin","detail":{"id":"a\\u0000b"}}',
        "dlq")
    add("nul-event-id", '{"id":"a\\u0000b","detail-type":"InsertCoin","detail":{"id":"adv-c"}}',
        "dlq")
    add("nul-in-data", '{"id":"adv-c3","detail-type":"InsertCoin",'
        '"detail":{"id":"adv-c","x":"a\\u0000b"}}', "dlq")
    for i, ch in enumerate(["\\u0001", "\\n", "\\t", "\\u001f", "\\u007f", "\\u0085"]):
        add(f"control-entity-{i}", '{"id":"adv-cc-%d","detail-type":"InsertCoin",'
            '"detail":{"id":"a%sb"}}' % (i, ch), "dlq")
    add("surrogate-entity", '{"id":"adv-s1","detail-type":"InsertCoin",'
        '"detail":{"id":"a\\ud800b"}}', "dlq")
    add("surrogate-event-id", '{"id":"\\udc00","detail-type":"InsertCoin",'
        '"detail":{"id":"adv-s"}}', "dlq")
    add("surrogate-data", '{"id":"adv-s3","detail-type":"InsertCoin",'
        '"detail":{"id":"adv-s","x":"\\ud83d"}}', "dlq")
    add("surrogate-key", '{"id":"adv-s4","detail-type":"InsertCoin",'
        '"detail":{"id":"adv-s","\\udfff":1}}', "dlq")
    add("emoji-pair", '{"id":"adv-s5","detail-type":"InsertCoin",'
        '"detail":{"id":"adv-\\ud83d\\ude00","x":"\\u00e9"}}', "recorded")
    add("utf8-entity", coin("adv-日本-é", "adv-u1"), "recorded")
    # odd numbers in the data
    for i, num in enumerate(["1e400", "-1e400", "1e-400", "123456789012345678901234567890123456789",
                             "1E126", "1e-131"]):
        add(f"number-refused-{i}", '{"id":"adv-num-r%d","detail-type":"InsertCoin",'
            '"detail":{"id":"adv-num","x":%s}}' % (i, num), "dlq")
    for i, num in enumerate(["-0", "0.1", "1.50", "9007199254740993", "1E125", "1e-130",
                             "12345678901234567890123456789012345678", "-0.0e0", "5e-324"]):
        add(f"number-kept-{i}", '{"id":"adv-num-k%d","detail-type":"InsertCoin",'
            '"detail":{"id":"adv-num-%d","x":%s}}' % (i, i, num), "either")
    # reserved field names in the data
    for name in ["_pk", "_sk", "_seq", "_typ", "_namespace", "_ts", "_date", "_eid", "_rejected",
                 "_ttl", "_tms", "_eddy"]:
        add(f"reserved-{name}", coin("adv-res", f"adv-res{name}", **{name: "x"}), "dlq")
    add("not-reserved", coin("adv-res2", "adv-res-ok", _other="x", pk="y", eddy="z"), "recorded")
    # ids that look like keys, paths or other partitions
    for i, eid in enumerate(["STATE", "EVENT/x", "INBOUND/1/0/InsertCoin", "#outbox/1", "#lease",
                             "machine/control-1", "../control-1", "a/b/c", "control-1/", "*",
                             " ", "%2F", "control-1\u200b"]):
        add(f"keylike-entity-{i}", coin(eid, f"adv-kl-{i}"), "recorded")
    for i, evid in enumerate(["STATE", "EVENT/x", "../../", "#outbox", "adv-ok-0 "]):
        add(f"keylike-event-id-{i}", coin("adv-kle", evid), "recorded")
    # huge strings that fit
    add("huge-string", coin("adv-huge", "adv-huge-1", pad="h" * 200000), "recorded")
    add("many-fields", coin("adv-many", "adv-many-1", **{f"f{i}": i for i in range(2000)}),
        "recorded")
    # a body whose envelope is fine but whose data the machine cannot use
    add("pull-user-number", env("adv-pu-1", "PullHandle", {"id": "adv-pu", "userId": 5}),
        "recorded")
    return c


def drain_dlq(url, want, timeout_s=60):
    """{MessageId of the original: (body, eddy-error)} from the DLQ."""
    sqs = ENV.sqs()
    got = {}
    deadline = time.monotonic() + timeout_s
    idle = 0
    while time.monotonic() < deadline and (len(got) < want or idle < 2):
        msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                   MessageAttributeNames=["All"]).get("Messages", [])
        idle = idle + 1 if not msgs else 0
        for m in msgs:
            a = m.get("MessageAttributes", {})
            mid = a.get("eddy-message-id", {}).get("StringValue")
            got[mid] = (m["Body"], a.get("eddy-error", {}).get("StringValue", ""))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return got


def scan_eids(table):
    ddb = ENV.dynamodb()
    eids, start = set(), None
    while True:
        kw = {"TableName": table, "ProjectionExpression": "#e",
              "ExpressionAttributeNames": {"#e": "_eid"}}
        if start:
            kw["ExclusiveStartKey"] = start
        res = ddb.scan(**kw)
        eids |= {i["_eid"]["S"] for i in res["Items"] if "_eid" in i}
        start = res.get("LastEvaluatedKey")
        if not start:
            return eids


def event_id_of(body, message_id):
    """The event id eddy takes from a body: /id when a string, else the MessageId."""
    try:
        b = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if isinstance(b, dict):
        if "id" not in b:
            return message_id
        if isinstance(b["id"], str):
            return b["id"]
    return None


def test_adversarial_corpus():
    cases = corpus()
    assert len(cases) >= 100, len(cases)
    table = awsenv.create_table(ENV, awsenv.unique_name("adv"))
    dlq = awsenv.create_queue(ENV, awsenv.unique_name("adv-dlq"))
    q = awsenv.create_queue(ENV, awsenv.unique_name("adv-q"))
    # the control entity, before anything hostile arrives
    control = wk.game_bodies(["control-1"], 2)
    wk.send_all(ENV, q["url"], control[:2])
    w = Worker(ENV, table, q["url"], EDDY_DLQ_URL=dlq["url"], EDDY_MAX_INFLIGHT=20)
    try:
        wk.wait_drained(ENV, q["url"], timeout_s=60)
        wk.send_all(ENV, q["url"], control[2:])
        wk.wait_drained(ENV, q["url"], timeout_s=60)
        before = sorted(json.dumps(i, sort_keys=True)
                        for i in wk.items(ENV, table, f"{NS}/control-1"))
        sqs = ENV.sqs()
        sent = {}
        for name, body, expect in cases:
            mid = sqs.send_message(QueueUrl=q["url"], MessageBody=body)["MessageId"]
            sent[mid] = (name, body, expect)
        wk.wait_drained(ENV, q["url"], timeout_s=240)
    finally:
        wk.stop_ok(w)
    want_dlq = sum(1 for _, _, e in cases if e == "dlq")
    dead = drain_dlq(dlq["url"], want_dlq)
    eids = scan_eids(table)
    problems = []
    for mid, (name, body, expect) in sent.items():
        in_dlq = mid in dead
        if in_dlq and not dead[mid][1]:
            problems.append(f"{name}: in the DLQ without eddy-error")
        evid = event_id_of(body, mid)
        recorded = evid is not None and evid in eids
        if expect == "dlq" and not in_dlq:
            problems.append(f"{name}: not in the DLQ (recorded: {recorded})")
        elif expect == "recorded" and not recorded:
            why = dead[mid][1] if in_dlq else "not in the DLQ either"
            problems.append(f"{name}: not recorded ({why})")
        elif not in_dlq and not recorded:
            problems.append(f"{name}: neither recorded nor in the DLQ")
    unknown = set(dead) - set(sent)
    assert not unknown, f"DLQ messages that were not sent: {unknown}"
    after = sorted(json.dumps(i, sort_keys=True) for i in wk.items(ENV, table, f"{NS}/control-1"))
    assert after == before, "the control entity changed"
    assert not problems, "\n".join(problems)
    m = w.metrics()
    print(f"     {len(cases)} bodies: {len(dead)} in the DLQ, "
          f"{len(cases) - len(dead)} recorded or duplicates; poison {m.get('poison', 0)}",
          flush=True)


AdversarialTest = awsenv.test_case("AdversarialTest", [test_adversarial_corpus])


if __name__ == "__main__":
    awsenv.main()
