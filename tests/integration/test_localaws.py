"""Smoke test of the local AWS the integration tests run against.

Proves the pipeline the C integration tests rely on:
  - the plain instance serves SQS on AWS_ENDPOINT_URL and DynamoDB on its own
    endpoint, in a separate moto process (state not shared);
  - the DynamoDB endpoint handles concurrent requests one at a time, so a
    failed transaction cannot undo the writes of another;
  - with SigV4 verification on ("auth"), a wrong secret is refused and the real
    key is accepted, on both endpoints;
  - the patched queues (each receive stops after the messages it takes, the
    counts are one pass) still count, hide and deliver as SQS does, and a long
    poll on an empty queue wakes when a message comes;
  - the moto version the local AWS patches is the one installed and pinned, and
    another is refused with both versions named;
  - over TLS ("tls"), clients verify moto with AWS_CA_BUNDLE, and without the
    CA the connection is refused; connections stay open between requests, as
    AWS's do, and the TLS proxy counts connections and handshakes.
"""

import concurrent.futures
import http.client
import ssl
import threading
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

from botocore.exceptions import ClientError, SSLError

import awsenv


def test_plain_endpoints():
    env = awsenv.Env.current()
    assert env.endpoint("dynamodb") != env.endpoint("sqs")
    queue = awsenv.create_queue(env, awsenv.unique_name("smoke"))
    env.sqs().send_message(QueueUrl=queue["url"], MessageBody="hello")
    assert awsenv.receive_all(env, queue["url"], 1) == ["hello"]
    table = awsenv.create_table(env, awsenv.unique_name("smoke"))
    assert table in env.dynamodb().list_tables()["TableNames"]
    # The main process has its own DynamoDB state: the table is not there.
    main = awsenv.Env({k: v for k, v in env.values.items()
                       if k != "AWS_ENDPOINT_URL_DYNAMODB"})
    assert table not in main.dynamodb().list_tables()["TableNames"]


def queue_counts(sqs, url):
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    got = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return tuple(int(got[n]) for n in names)


def test_queue_behaviour_kept():
    env = awsenv.Env.current()
    sqs = env.sqs()
    url = awsenv.create_queue(env, awsenv.unique_name("queue"))["url"]
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"MessageRetentionPeriod": "60"})
    for i in range(0, 25, 5):
        sqs.send_message_batch(QueueUrl=url, Entries=[
            {"Id": str(k), "MessageBody": f"m{k}"} for k in range(i, i + 5)])
    assert queue_counts(sqs, url) == (25, 0)
    first = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert len(first) == 10
    assert queue_counts(sqs, url) == (15, 10)
    # The next receives pass over the ten in flight and take the others.
    seen = {m["Body"] for m in first}
    for want in (10, 5):
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
        assert len(got) == want, got
        seen |= {m["Body"] for m in got}
    assert seen == {f"m{k}" for k in range(25)}
    assert queue_counts(sqs, url) == (0, 25)
    assert "Messages" not in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=first[0]["ReceiptHandle"],
                                  VisibilityTimeout=0)
    again = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in again] == [first[0]["Body"]]
    # A long poll on a queue with nothing visible wakes when a message is sent.
    empty = awsenv.create_queue(env, awsenv.unique_name("queue"))["url"]
    threading.Timer(0.5, lambda: env.sqs().send_message(QueueUrl=empty, MessageBody="late")).start()
    t0 = time.monotonic()
    got = sqs.receive_message(QueueUrl=empty, WaitTimeSeconds=10)["Messages"]
    assert [m["Body"] for m in got] == ["late"]
    assert time.monotonic() - t0 < 8


def transact_increment(ddb, table, key, fail):
    """Add 1 to n on `key`; with fail, a transaction whose condition fails."""
    items = [{"Update": {
        "TableName": table, "Key": {"_pk": {"S": key}, "_sk": {"S": "STATE"}},
        "UpdateExpression": "ADD n :one",
        "ExpressionAttributeValues": {":one": {"N": "1"}}}}]
    if fail:
        items.append({"ConditionCheck": {
            "TableName": table, "Key": {"_pk": {"S": "absent"}, "_sk": {"S": "X"}},
            "ConditionExpression": "attribute_exists(#p)",
            "ExpressionAttributeNames": {"#p": "_pk"}}})
    try:
        ddb.transact_write_items(TransactItems=items)
        return True
    except ClientError as err:
        if err.response["Error"]["Code"] != "TransactionCanceledException":
            raise
        return False


def test_dynamodb_serialized():
    env = awsenv.Env.current()
    table = awsenv.create_table(env, awsenv.unique_name("serial"))
    # Filler items make moto's per-transaction table copy slow, which widens
    # the window in which a failed transaction would restore a stale copy.
    filler = [{"PutRequest": {"Item": {
        "_pk": {"S": f"filler{i}"}, "_sk": {"S": "X"}, "pad": {"S": "p" * 200}}}}
        for i in range(100)]
    for start in range(0, len(filler), 25):
        env.dynamodb().batch_write_item(RequestItems={table: filler[start:start + 25]})
    clients = [env.dynamodb() for _ in range(8)]
    jobs = [(clients[i % 8], f"k{i % 4}", i % 3 == 0) for i in range(48)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda j: transact_increment(j[0], table, j[1], j[2]), jobs))
    expected = {}
    for (_, key, _), ok in zip(jobs, results):
        expected[key] = expected.get(key, 0) + (1 if ok else 0)
    assert results.count(False) == 16, results.count(False)
    for key, count in expected.items():
        item = env.dynamodb().get_item(
            TableName=table, Key={"_pk": {"S": key}, "_sk": {"S": "STATE"}},
            ConsistentRead=True)["Item"]
        assert int(item["n"]["N"]) == count, (key, item, count)


def refused(call):
    try:
        call()
    except ClientError as err:
        return err.response["Error"]["Code"]
    return None


def test_auth_rejects_wrong_secret():
    env = awsenv.Env.variant("auth")
    secret = env.values["AWS_SECRET_ACCESS_KEY"]
    wrong = secret[:-1] + ("x" if secret[-1] != "x" else "y")
    bad_sqs = env.client("sqs", secret=wrong, max_attempts=1)
    bad_ddb = env.client("dynamodb", secret=wrong, max_attempts=1)
    code = refused(bad_sqs.list_queues)
    assert code is not None, "sqs accepted a wrong signature"
    code = refused(bad_ddb.list_tables)
    assert code is not None, "dynamodb accepted a wrong signature"
    unknown = awsenv.Env(dict(env.values, AWS_ACCESS_KEY_ID="AKIAIOSFODNN7EXAMPLE"))
    assert refused(unknown.client("sqs", max_attempts=1).list_queues) is not None


def test_auth_accepts_right_key():
    env = awsenv.Env.variant("auth")
    assert env.values["AWS_ACCESS_KEY_ID"] != "test"
    queue = awsenv.create_queue(env, awsenv.unique_name("auth"))
    env.sqs().send_message(QueueUrl=queue["url"], MessageBody="signed")
    assert awsenv.receive_all(env, queue["url"], 1) == ["signed"]
    table = awsenv.create_table(env, awsenv.unique_name("auth"))
    assert table in env.dynamodb().list_tables()["TableNames"]


def test_tls_with_ca_bundle():
    env = awsenv.Env.variant("tls")
    assert env.endpoint("sqs").startswith("https://127.0.0.1:")
    assert env.endpoint("dynamodb").startswith("https://127.0.0.1:")
    assert env.ca_bundle
    queue = awsenv.create_queue(env, awsenv.unique_name("tls"))
    assert queue["url"]
    awsenv.create_table(env, awsenv.unique_name("tls"))


def test_tls_refused_without_ca():
    env = awsenv.Env.variant("tls")
    no_ca = awsenv.Env({k: v for k, v in env.values.items() if k != "AWS_CA_BUNDLE"})
    try:
        no_ca.client("sqs", max_attempts=1).list_queues()
    except SSLError:
        pass
    else:
        raise AssertionError("TLS without the run's CA was accepted")
    ctx = ssl.create_default_context(cafile=env.ca_bundle)
    url = env.endpoint("sqs") + "/moto-api/reset-auth"
    try:
        urllib.request.urlopen(url, context=ctx, timeout=5)
    except urllib.error.HTTPError as err:
        assert err.code == 400  # an answer over verified TLS
    else:
        raise AssertionError("expected moto's 400 for GET reset-auth")


def test_tls_keeps_connections_alive():
    env = awsenv.Env.variant("tls")
    run_dir = Path(env.values["EDDY_LOCAL_AWS_DIR"])
    ctx = ssl.create_default_context(cafile=env.ca_bundle)
    for service in ("sqs", "dynamodb"):
        before = awsenv.localaws.tls_stats(run_dir)
        url = urlparse(env.endpoint(service))
        conn = http.client.HTTPSConnection(url.hostname, url.port, context=ctx, timeout=10)
        try:
            socks = set()
            for _ in range(3):
                conn.request("GET", "/moto-api/reset-auth")
                resp = conn.getresponse()
                resp.read()
                assert resp.status == 400
                assert not resp.will_close, "the TLS endpoint closed the connection"
                socks.add(id(conn.sock))
            assert len(socks) == 1
        finally:
            conn.close()
        after = awsenv.localaws.tls_stats(run_dir)
        # other tests share the instance: at least ours were counted
        assert after["requests"] - before["requests"] >= 3
        assert after["connections"] > before["connections"]
        assert after["full_handshakes"] + after["resumed_handshakes"] <= after["connections"]


def test_moto_version_checked():
    localaws = awsenv.localaws
    localaws.check_moto_version()  # the venv's moto is the patched one
    pinned = (Path(localaws.ROOT) / "tools" / "requirements.in").read_text()
    assert f"moto[server]=={localaws.MOTO_VERSION}\n" in pinned
    try:
        localaws.check_moto_version("5.0.0")
    except localaws.LocalAwsError as err:
        assert f"moto {localaws.MOTO_VERSION} expected" in str(err), err
        assert "found 5.0.0" in str(err), err
    else:
        raise AssertionError("another moto version was accepted")


LocalAwsTest = awsenv.test_case("LocalAwsTest", [
    test_plain_endpoints,
    test_queue_behaviour_kept,
    test_dynamodb_serialized,
    test_auth_rejects_wrong_secret,
    test_auth_accepts_right_key,
    test_tls_with_ca_bundle,
    test_tls_refused_without_ca,
    test_tls_keeps_connections_alive,
    test_moto_version_checked,
])


if __name__ == "__main__":
    awsenv.main()
