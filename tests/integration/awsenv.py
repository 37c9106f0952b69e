"""Helpers for eddy's Python integration tests against the local AWS (moto).

The local AWS is started by tools/test (or by tests/integration/with-local-aws when
a test runs alone) with tools/local-aws. Its endpoints reach the tests as:
  - the process environment: AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_DYNAMODB,
    AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (the plain instance);
  - env files written by tools/local-aws, named by EDDY_TEST_PLAIN_ENV_FILE,
    EDDY_TEST_AUTH_ENV_FILE (SigV4 verification on) and EDDY_TEST_TLS_ENV_FILE
    (HTTPS, AWS_CA_BUNDLE set).
An "env" below is a dict of those variables; Env.variant("auth") loads one.

Tests share each instance and run in parallel, so every resource name comes
from unique_name(). Nothing here talks to anything but 127.0.0.1.
"""

import atexit
import json
import os
import sys
import time
import unittest
import uuid
from pathlib import Path
from urllib.parse import urlparse

import boto3
from botocore.config import Config

SOURCE_ROOT = Path(os.environ.get("EDDY_SOURCE_ROOT", Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(SOURCE_ROOT / "tools"))
import localaws  # noqa: E402  (tools/localaws.py: env files, CloudFormation on moto)

VARIANTS = ("plain", "auth", "tls")
ENV_NAMES = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_REGION",
             "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_CA_BUNDLE")


STARTED = []  # every process a test started, killed at exit so a failed test leaves none behind


@atexit.register
def kill_leftovers():
    for p in STARTED:
        if p.poll() is None:
            p.kill()
            p.wait()


class NoLocalAws(RuntimeError):
    """The local AWS the test needs is not in the environment."""


def fail_without(variable):
    raise NoLocalAws(
        f"{variable} is not set: integration tests need the local AWS. Run them with "
        "tools/test, or through tests/integration/with-local-aws, or after "
        "`eval \"$(tools/local-aws start)\"`.")


def check_loopback(env):
    """Refuse any endpoint that is not on this machine: tests create resources."""
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB"):
        if name not in env:
            continue
        host = urlparse(env[name]).hostname
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise NoLocalAws(f"{name}={env[name]} is not a local endpoint; refusing")


class Env:
    """One local AWS instance: its variables and boto3 clients for it."""

    def __init__(self, values):
        self.values = dict(values)
        check_loopback(self.values)

    @classmethod
    def current(cls):
        """The instance in the process environment (the plain one)."""
        for name in ENV_NAMES[:5]:
            if not os.environ.get(name):
                fail_without(name)
        return cls({n: os.environ[n] for n in ENV_NAMES if os.environ.get(n)})

    @classmethod
    def variant(cls, name):
        """The instance started with --auth ("auth"), --tls ("tls") or plain."""
        var = f"EDDY_TEST_{name.upper()}_ENV_FILE"
        path = os.environ.get(var)
        if not path:
            fail_without(var)
        return cls(localaws.read_env_file(path))

    @property
    def region(self):
        return self.values["AWS_REGION"]

    @property
    def ca_bundle(self):
        return self.values.get("AWS_CA_BUNDLE")

    def endpoint(self, service):
        specific = self.values.get(f"AWS_ENDPOINT_URL_{service.upper()}")
        return specific or self.values["AWS_ENDPOINT_URL"]

    def client(self, service, secret=None, max_attempts=3):
        """A boto3 client; `secret` overrides the secret key (to test refusals)."""
        return boto3.session.Session().client(
            service,
            region_name=self.region,
            endpoint_url=self.endpoint(service),
            aws_access_key_id=self.values["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=secret or self.values["AWS_SECRET_ACCESS_KEY"],
            verify=self.ca_bundle or True,
            config=Config(retries={"max_attempts": max_attempts, "mode": "standard"}),
        )

    def sqs(self):
        return self.client("sqs")

    def dynamodb(self):
        return self.client("dynamodb")

    def events(self):
        return self.client("events")

    def deploy_stack(self, template_path, stack_name, parameters):
        """Create the template's stack in moto (both processes); return the outputs."""
        body = Path(template_path).read_text()
        return localaws.deploy_stack(self.values, body, stack_name, parameters)


def unique_name(prefix):
    """A name no other test run uses: tests share one local AWS."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def wait_for(predicate, timeout_s=10.0, interval_s=0.05, what="condition"):
    """Poll predicate() until it returns a true value; return that value."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not met within {timeout_s} s")
        time.sleep(interval_s)


def create_table(env, name):
    """A table shaped like eddy's: _pk/_sk strings, on demand, TTL on _ttl."""
    ddb = env.dynamodb()
    ddb.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "_pk", "AttributeType": "S"},
                              {"AttributeName": "_sk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "_pk", "KeyType": "HASH"},
                   {"AttributeName": "_sk", "KeyType": "RANGE"}],
    )
    ddb.get_waiter("table_exists").wait(TableName=name,
                                        WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    ddb.update_time_to_live(TableName=name, TimeToLiveSpecification={
        "AttributeName": "_ttl", "Enabled": True})
    return name


def create_queue(env, name, fifo=False, dlq=None, max_receive_count=5,
                 visibility_timeout=30):
    """A queue (FIFO when asked, name suffixed .fifo); dlq is a queue URL.

    Returns {"url": ..., "arn": ...}.
    """
    sqs = env.sqs()
    attributes = {"VisibilityTimeout": str(visibility_timeout)}
    if fifo:
        name = name if name.endswith(".fifo") else name + ".fifo"
        attributes["FifoQueue"] = "true"
    if dlq:
        dlq_arn = queue_arn(env, dlq)
        attributes["RedrivePolicy"] = json.dumps(
            {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receive_count)})
    url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    return {"url": url, "arn": queue_arn(env, url)}


def queue_arn(env, url):
    attrs = env.sqs().get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    return attrs["Attributes"]["QueueArn"]


def create_bus_to_queue(env, bus_name, queue, detail_types):
    """A bus and a rule sending the given detail-types to queue ({"url","arn"}).

    Returns {"bus": name, "bus_arn": ..., "rule": name, "rule_arn": ...}.
    """
    events = env.events()
    bus_arn = events.create_event_bus(Name=bus_name)["EventBusArn"]
    rule = f"{bus_name}-to-queue"
    rule_arn = events.put_rule(
        Name=rule, EventBusName=bus_name,
        EventPattern=json.dumps({"detail-type": list(detail_types)}))["RuleArn"]
    events.put_targets(Rule=rule, EventBusName=bus_name,
                       Targets=[{"Id": "queue", "Arn": queue["arn"]}])
    return {"bus": bus_name, "bus_arn": bus_arn, "rule": rule, "rule_arn": rule_arn}


def receive_all(env, queue_url, want, timeout_s=10.0):
    """Receive (and delete) messages until `want` bodies arrived; return them."""
    sqs = env.sqs()
    bodies = []
    deadline = time.monotonic() + timeout_s
    while len(bodies) < want and time.monotonic() < deadline:
        got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10,
                                  WaitTimeSeconds=1).get("Messages", [])
        for m in got:
            bodies.append(m["Body"])
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
    return bodies


def test_case(name, tests, setup=None):
    """A unittest.TestCase class NAME with one method per test function.

    The functions keep their names (test_...), so the standard runner can run
    one alone: `python -m unittest test_worker.WorkerTest.test_state_history`
    (from tests/integration, with the local AWS's variables set; see
    with-local-aws), or `python test_worker.py WorkerTest.test_state_history`.
    main() runs them in the order given; SETUP, if given, runs once before
    any of them (setUpClass), so each can run alone.
    """
    def method(test):
        def run(self):
            test()
        run.__name__ = run.__qualname__ = test.__name__
        run.__doc__ = test.__doc__
        return run

    attrs = {t.__name__: method(t) for t in tests}
    attrs.update(order=[t.__name__ for t in tests], __module__=tests[0].__module__,
                 __qualname__=name)
    if setup is not None:
        attrs["setUpClass"] = classmethod(lambda cls: setup())
    return type(name, (unittest.TestCase,), attrs)


class OrderedLoader(unittest.TestLoader):
    """Loads a test_case() class's tests in the order they were listed."""

    def getTestCaseNames(self, testCaseClass):  # noqa: N802  (unittest's name)
        names = super().getTestCaseNames(testCaseClass)
        order = getattr(testCaseClass, "order", None)
        if order:
            names.sort(key=order.index)
        return names


def main(argv=None):
    """unittest.main over the __main__ module: one line a test, exit 1 on a failure.

    Arguments as unittest takes them: test names (WorkerTest.test_x), -k PATTERN.
    """
    unittest.main(module="__main__", argv=argv, testLoader=OrderedLoader(), verbosity=2)


def run_tests(tests):
    """Run test functions (closures that cannot sit at module level) in order
    with the standard runner; exit 1 if any failed."""
    suite = OrderedLoader().loadTestsFromTestCase(test_case("Tests", tests))
    result = unittest.TextTestRunner(verbosity=2).run(suite)
    sys.exit(0 if result.wasSuccessful() else 1)
