"""The command line and the configuration table, without AWS: every bad value
stops eddy at start with exit 2 and a message naming its variable or flag.

Runs the eddy binary of the build (EDDY_BUILD_ROOT/eddy).
"""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(os.environ.get("EDDY_SOURCE_ROOT", Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(ROOT / "tests" / "integration"))
import awsenv  # noqa: E402  (test_case, main)

EDDY = str(Path(os.environ["EDDY_BUILD_ROOT"]) / "eddy")
BASE = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_MAX_ATTEMPTS": "1",
        "AWS_EC2_METADATA_DISABLED": "true", "EDDY_MACHINE": "slotmachine",
        "EDDY_TABLE": "t", "EDDY_QUEUE_URL": "http://127.0.0.1:9/123456789012/q"}


def run(args, **env):
    e = dict(BASE)
    e.update(env)
    return subprocess.run([EDDY] + args, env=e, capture_output=True, text=True, timeout=30)


def refused(args, name, *words, **env):
    p = run(args, **env)
    assert p.returncode == 2, (args, env, p.returncode, p.stderr)
    assert name in p.stderr, (name, p.stderr)
    for w in words:
        assert w in p.stderr, (w, p.stderr)


def test_pointers_and_namespace_name_their_variable():
    refused(["worker"], "EDDY_ENTITY_ID", "must be empty or start with '/'", EDDY_ENTITY_ID="detail")
    refused(["worker"], "EDDY_EVENT_TYPE", EDDY_EVENT_TYPE="/a~2")
    refused(["worker"], "EDDY_EVENT_ID", EDDY_EVENT_ID="id")
    refused(["worker"], "EDDY_EVENT_DATA", EDDY_EVENT_DATA="/x~")
    refused(["worker", "--event-id=/a~9"], "--event-id")
    refused(["worker"], "EDDY_NAMESPACE", "starts with '#'", EDDY_NAMESPACE="#outbox")
    refused(["get", "x"], "EDDY_NAMESPACE", "control character", EDDY_NAMESPACE="a\tb")
    refused(["worker"], "EDDY_NAMESPACE", "the limit is 996", EDDY_NAMESPACE="n" * 997)


def test_integers_written_plainly():
    for bad in (" 10", "+10", "10 ", "1e2", "0x10", "", "-"):
        if bad == "":
            continue  # empty means unset
        refused(["worker"], "EDDY_MAX_INFLIGHT", EDDY_MAX_INFLIGHT=bad)
    for bad in (" 5", "+5", "5 s", "-5"):
        refused(["worker"], "EDDY_DRAIN_SECONDS", EDDY_DRAIN_SECONDS=bad)
    refused(["worker", "--max-inflight", "+3"], "--max-inflight")


def test_health_folder_must_exist():
    with tempfile.TemporaryDirectory() as d:
        refused(["worker"], "EDDY_HEALTH_FILE", "does not exist",
                EDDY_HEALTH_FILE=f"{d}/missing/health")


def test_health_check_that_could_fail_a_well_worker():
    with tempfile.TemporaryDirectory() as d:
        os.chmod(d, 0o500)
        if os.access(d, os.W_OK):  # root writes anywhere: no read-only folder here
            os.chmod(d, 0o700)
        else:
            refused(["worker"], "EDDY_HEALTH_FILE", "not writable", EDDY_HEALTH_FILE=f"{d}/health")
            os.chmod(d, 0o700)
        health = f"{d}/health"
        refused(["worker"], "EDDY_HEALTH_MAX_AGE", "EDDY_WAIT_SECONDS", "twice",
                EDDY_HEALTH_FILE=health, EDDY_HEALTH_MAX_AGE="30", EDDY_WAIT_SECONDS="20")
        refused(["worker"], "EDDY_HEALTH_MAX_AGE", "EDDY_BREAKER_PROBE_MAX_MS",
                EDDY_HEALTH_FILE=health, EDDY_BREAKER_PROBE_MAX_MS="300000")


def test_ca_bundle_must_be_readable():
    refused(["worker"], "AWS_CA_BUNDLE", "cannot read", AWS_CA_BUNDLE="/nonexistent/ca.pem")


def test_double_dash_ends_options():
    p = run(["get", "--", "--help"])
    assert "Usage" not in p.stdout and "usage" not in p.stdout, p.stdout
    assert "unknown flag" not in p.stderr, p.stderr
    assert p.returncode == 3, (p.returncode, p.stderr)  # it asked the (absent) table for --help
    p = run(["--help"])
    assert p.returncode == 0 and "EDDY_ENTITY_ID" in p.stdout


def test_words_left_over_are_refused():
    # a yes/no flag takes its value after "=": "off" here is no value, and
    # the worker must not start with its relay on
    refused(["worker", "--relay", "off"], "takes no arguments", '"off"', "--relay=off")
    refused(["relay", "extra"], "takes no arguments", '"extra"')
    refused(["healthcheck", "now"], "takes no arguments")
    # flags before the command: no worker may start in its place
    refused(["--table=t", "outbox", "drop", "all"], '"outbox"', "the command goes first")


CliTest = awsenv.test_case("CliTest", [
    test_words_left_over_are_refused,
    test_pointers_and_namespace_name_their_variable,
    test_integers_written_plainly,
    test_health_folder_must_exist,
    test_health_check_that_could_fail_a_well_worker,
    test_ca_bundle_must_be_readable,
    test_double_dash_ends_options,
])


if __name__ == "__main__":
    awsenv.main()
