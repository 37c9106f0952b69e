"""A local AWS for eddy's tests, demo and benchmark: moto servers on 127.0.0.1.

`start` runs two moto servers, each in its own process, at free ports:
  - "main" serves every service (SQS, EventBridge, IAM, CloudFormation, ...) from
    a threaded server, and the EventBridge Custom Event Bus API, which moto does
    not have, from eventsv2.py beside this file;
  - "dynamodb" serves DynamoDB (AWS_ENDPOINT_URL_DYNAMODB) and handles ONE request
    at a time. moto's DynamoDB is not safe under concurrent requests: a failed
    transaction restores copies of the tables and can undo writes that ran
    meanwhile. Connections are kept alive (HTTP/1.1, served by waitress), but a
    lock lets only one request run in moto at a time.

Each process has its own moto state. A table created through CloudFormation on the
main endpoint is therefore not seen on the DynamoDB endpoint: `deploy` (and
deploy_stack() below) creates a stack in both processes, so the table lives where
DynamoDB is served and the queues, bus and rule where the rest is served.

Options: --tls serves HTTPS with a CA generated for the run (AWS_CA_BUNDLE): an
haproxy process (Debian's package) terminates TLS in front of the same
keep-alive servers, and keeps client connections alive as AWS's endpoints do
(idle up to 120 s); its statistics socket counts connections and full and
resumed handshakes (`tls-stats`). --auth turns on moto's SigV4 verification
after creating an IAM user with an admin policy and an access key (the same key
in both processes), and exports it.

The environment for clients is printed as shell `export` lines and written to
DIR/env. `stop` ends the processes recorded in DIR. This is a development tool,
not part of the eddy binary; it never talks to anything but 127.0.0.1.
"""

import argparse
import http.client
import json
import os
import shlex
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import eventsv2

ROOT = Path(__file__).resolve().parent.parent
REGION = "us-east-1"
HOST = "127.0.0.1"
SERVERS = ("main", "dynamodb")
TLS_PROXY = "tls"  # the haproxy process of --tls
# How long a TLS client connection may sit idle between requests: as long as
# the plain servers keep theirs (waitress's channel_timeout).
IDLE_TIMEOUT_S = 120
ADMIN_USER = "eddy-local-admin"
ADMIN_POLICY = "eddy-local-admin"
DUMMY_KEY = ("test", "test")
START_TIMEOUT_S = 60.0
KEY_ENV = "EDDY_LOCALAWS_IMPORT_KEY"
# The moto release the patches below (undo_log_transactions, serialize_queues,
# fast_queues, fast_partition_queries, cache_jsonpath, cache_module_list,
# import_admin_key) were written against: they replace moto internals, so
# another release is refused at start rather than patched blind.
# tools/requirements.in pins the same.
MOTO_VERSION = "5.2.5"
ADMIN_DOCUMENT = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
    }
)


class LocalAwsError(Exception):
    """A failure with a message meant for the person running the tool."""


# --- the server process -------------------------------------------------------


def check_moto_version(found=None):
    """Refuse a moto other than MOTO_VERSION, naming both versions."""
    if found is None:
        from importlib import metadata

        try:
            found = metadata.version("moto")
        except metadata.PackageNotFoundError:
            found = "none installed"
    if found != MOTO_VERSION:
        raise LocalAwsError(
            f"moto {MOTO_VERSION} expected (the version tools/localaws.py patches), "
            f"found {found}: run tools/bootstrap, or update the patches and MOTO_VERSION")


def serialized(app, lock=None, local=None):
    """Wrap a WSGI app so that only one request runs in it at a time.

    The body is produced inside the lock, so no part of a request overlaps another.
    local.held tells code running inside that the lock is held (see
    serialize_queues).
    """
    lock = lock or threading.Lock()
    local = local or threading.local()

    def wrapped(environ, start_response):
        with lock:
            local.held = True
            try:
                result = app(environ, start_response)
                try:
                    body = b"".join(result)
                finally:
                    close = getattr(result, "close", None)
                    if close is not None:
                        close()
            finally:
                local.held = False
        return [body]

    return wrapped


def undo_log_transactions():
    """Make moto's TransactWriteItems cost what the transaction touches.

    moto backs up every table a transaction names with copy.deepcopy before it
    applies the items, and puts the copies back when one fails. That makes each
    transaction cost as much as the whole table: a benchmark of 10,000 events
    would slow to a crawl as the table grows. This keeps moto's logic and
    results but replaces the table copies with an undo log: the previous value
    of each item the transaction writes, restored in reverse order on failure.
    Used only in the DynamoDB process, which runs one request at a time, so no
    other request can observe the partly applied transaction.
    """
    import copy

    import moto.dynamodb.models as models

    class NoTableCopy:
        """Stands in for the copy module inside transact_write_items."""

        @staticmethod
        def deepcopy(obj, memo=None):
            if isinstance(obj, models.Table):
                return obj  # the undo log does the restoring
            return copy.deepcopy(obj, memo)

    original = models.DynamoDBBackend.transact_write_items
    writers = ("put_item", "delete_item", "update_item")

    def key_of(backend, table_name, op, arg):
        if op != "put_item":
            return arg
        table = backend.get_table(table_name)
        key = {table.hash_key_attr: arg[table.hash_key_attr]}
        if table.range_key_attr is not None:
            key[table.range_key_attr] = arg[table.range_key_attr]
        return key

    def transact_write_items(self, transact_items):
        undo = []

        def logged(op):
            real = getattr(models.DynamoDBBackend, op)

            def write(table_name, arg, *a, **kw):
                key = key_of(self, table_name, op, arg)
                prev = self.get_item(table_name, key)
                undo.append((table_name, key, None if prev is None else prev.to_json()))
                return real(self, table_name, arg, *a, **kw)

            return write

        for op in writers:
            setattr(self, op, logged(op))
        models.copy = NoTableCopy
        try:
            return original(self, transact_items)
        except Exception:
            for op in writers:
                delattr(self, op)
            for table_name, key, prev in reversed(undo):
                if prev is None:
                    self.delete_item(table_name, key)
                else:
                    self.put_item(table_name, prev["Attributes"])
            raise
        finally:
            models.copy = copy
            for op in writers:
                self.__dict__.pop(op, None)

    models.DynamoDBBackend.transact_write_items = transact_write_items


def serialize_queues(app):
    """Run SQS and EventBridge requests one at a time in the main process.

    The Custom Event Bus (eventsv2.py) delivers to moto's queues, so it runs
    under the same lock.

    moto's SQS is not safe under concurrent requests: two ReceiveMessage calls
    (or a receive and a PutEvents delivering to the queue) race on the queue's
    sets ("Set changed size during iteration"), and the losing call answers 500
    after marking messages received, so they stay hidden for a visibility
    timeout. A long poll gives the lock up while it waits for messages, so
    waiting pollers do not hold everything else back.
    """
    import moto.sqs.models as sqs_models

    lock = threading.Lock()
    local = threading.local()
    wait = sqs_models.Queue.wait_for_messages

    def wait_for_messages(self, timeout):
        if not getattr(local, "held", False):
            return wait(self, timeout)
        lock.release()
        try:
            return wait(self, timeout)
        finally:
            lock.acquire()

    sqs_models.Queue.wait_for_messages = wait_for_messages
    inner = serialized(app, lock, local)

    def dispatch(environ, start_response):
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        custom_bus = environ.get("PATH_INFO", "").startswith(eventsv2.PREFIX)
        if custom_bus or target.startswith(("AmazonSQS.", "AWSEvents.")):
            return inner(environ, start_response)
        return app(environ, start_response)

    return dispatch


def fast_queues():
    """moto's SQS does work in proportion to the queue's length for every message.

    Each SendMessage reads queue.attributes, which counts the visible, in-flight
    and delayed messages by scanning the queue; each received message reads the
    retention period the same way (three scans); each delete or visibility change
    scans the queue, building a list of every message's receipt handles. With a
    few thousand messages queued a SendMessageBatch took half a second and a
    receive-and-delete round 1.5 s, so moto, not eddy, set every benchmark figure.
    The behaviour stays the same; the counting is skipped where only settings are
    read, and the scans are single passes without temporary lists.
    """
    import moto.sqs.models as sqs_models
    from moto.core.utils import unix_time, unix_time_millis

    Queue, Message, Backend = sqs_models.Queue, sqs_models.Message, sqs_models.SQSBackend
    settings_only = threading.local()

    def counted(fget):
        def get(self):
            return 0 if getattr(settings_only, "on", False) else fget(self)

        return property(get)

    for name in (
        "approximate_number_of_messages",
        "approximate_number_of_messages_delayed",
        "approximate_number_of_messages_not_visible",
    ):
        setattr(Queue, name, counted(getattr(Queue, name).fget))

    def reading_settings(fn):
        def call(*args, **kwargs):
            before = getattr(settings_only, "on", False)
            settings_only.on = True
            try:
                return fn(*args, **kwargs)
            finally:
                settings_only.on = before

        return call

    for name in ("send_message", "_validate_message"):
        setattr(Backend, name, reading_settings(getattr(Backend, name)))

    # Each received message's retention check built the queue's whole
    # attribute dictionary to read one setting.
    def retained(self, queue_name, message):
        period = self.get_queue(queue_name).message_retention_period
        return period + message.sent_timestamp / 1000 > unix_time()

    Backend.is_message_valid_based_on_retention_period = retained

    def had_receipt_handle(self, receipt_handle):
        return receipt_handle == self.receipt_handle or receipt_handle in self._old_receipt_handles

    Message.had_receipt_handle = had_receipt_handle

    # queue.messages was a list of every visible message, built for each
    # receive, which takes the first ten: with the in-flight messages at the
    # front of the queue, a lazy pass stops after a few hundred.
    class Visible:
        __slots__ = ("queue",)

        def __init__(self, queue):
            self.queue = queue

        def __iter__(self):
            now = unix_time_millis()
            return (m for m in self.queue._messages
                    if now > m.visible_at and now >= m.delayed_until)

        def __bool__(self):
            return next(iter(self), None) is not None

        def __len__(self):
            return sum(1 for _ in self)

    Queue.messages = property(Visible)

    # GetQueueAttributes builds queue.attributes (three scans) once per name
    # asked for, plus once to check it: one pass counts all three.
    def counts(self):
        now = unix_time_millis()
        visible = delayed = hidden = 0
        for m in self._messages:
            if now < m.delayed_until:
                delayed += 1
            if now <= m.visible_at:
                hidden += 1
            elif now >= m.delayed_until:
                visible += 1
        return visible, delayed, hidden

    plain_attributes = Queue.attributes.fget

    def attributes(self):
        if getattr(settings_only, "on", False):
            return plain_attributes(self)
        visible, delayed, hidden = counts(self)
        settings_only.on = True
        try:
            result = plain_attributes(self)
        finally:
            settings_only.on = False
        result["ApproximateNumberOfMessages"] = visible
        result["ApproximateNumberOfMessagesDelayed"] = delayed
        result["ApproximateNumberOfMessagesNotVisible"] = hidden
        return result

    Queue.attributes = property(attributes)

    def get_queue_attributes(self, queue_name, attribute_names):
        queue = self.get_queue(queue_name)
        if not attribute_names:
            return {}
        valid = ["All", *queue.BASE_ATTRIBUTES, *queue.FIFO_ATTRIBUTES, *queue.KMS_ATTRIBUTES]
        invalid = next((name for name in attribute_names if name not in valid), None)
        if invalid is not None:
            raise sqs_models.InvalidAttributeName(invalid)
        attributes = queue.attributes
        if "All" in attribute_names:
            return attributes
        return {n: attributes[n] for n in attribute_names if attributes.get(n) is not None}

    Backend.get_queue_attributes = get_queue_attributes

    def delete_message(self, receipt_handle):
        if receipt_handle in self.deleted_messages:
            return
        for i, message in enumerate(self._messages):
            if message.had_receipt_handle(receipt_handle):
                del self._messages[i]
                self.pending_messages.discard(message)
                self.deleted_messages.update(message.all_receipt_handles)
                return
        raise sqs_models.ReceiptHandleIsInvalid()

    Queue.delete_message = delete_message


def fast_partition_queries():
    """moto answers a Query on a table by sorting every item of every partition
    and then keeping the partition asked for. eddy's relay queries its outbox
    shards several times a second; with a few tens of thousands of records in
    the table each query took a few hundred milliseconds and the DynamoDB
    process ran flat out. A Query without an index now sorts only its own
    partition (items in the same order as before).
    """
    from moto.dynamodb.models.table import Table

    partition = threading.local()
    all_items = Table.all_items
    query = Table.query

    def items_of_partition(self):
        key = getattr(partition, "key", None)
        if key is None or not self.range_key_attr:
            return all_items(self)
        part = self.items.get(key)
        return sorted(part.values(), key=lambda item: item.range_key) if part else []

    def query_one_partition(self, hash_key, *args, **kwargs):
        index_name = args[6] if len(args) > 6 else kwargs.get("index_name")
        if index_name or hash_key is None:
            return query(self, hash_key, *args, **kwargs)
        partition.key = hash_key
        try:
            return query(self, hash_key, *args, **kwargs)
        finally:
            partition.key = None

    Table.all_items = items_of_partition
    Table.query = query_one_partition


def cache_module_list():
    """moto's server finds the service of every request by listing its own
    package directory and testing each entry with stat() (about 150 system
    calls a request, an eighth of the main process's CPU during a backlog).
    The package does not change while it runs, so the list is made once."""
    import moto.backends as backends

    modules = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: modules


def cache_jsonpath():
    """moto's EventBridge compiles the JSONPath of a rule target's input for
    every event it delivers (a PLY parser build, ~65 ms); the parsed
    expressions are immutable, so they are cached."""
    import functools

    import jsonpath_ng.ext

    jsonpath_ng.ext.parse = functools.lru_cache(maxsize=1024)(jsonpath_ng.ext.parse)


def import_admin_key(key_id, secret):
    """Create the admin user in this process's moto with a given access key.

    Used for the second process under --auth, so both accept one key: moto's
    CreateAccessKey cannot be told which key to make.
    """
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.iam.models import iam_backends

    backend = iam_backends[DEFAULT_ACCOUNT_ID]["aws"]
    backend.create_user(REGION, ADMIN_USER)
    policy = backend.create_policy("admin", "/", ADMIN_DOCUMENT, ADMIN_POLICY, [])
    backend.attach_user_policy(policy.arn, ADMIN_USER)
    key = backend.create_access_key(ADMIN_USER)
    del backend.access_keys[key.physical_resource_id]
    key.access_key_id = key_id
    key.secret_access_key = secret
    backend.access_keys[key.physical_resource_id] = key


def cmd_serve(args):
    """Run one moto server until SIGTERM; write its port to DIR/NAME.port."""
    import logging

    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    check_moto_version()
    if not args.verbose:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
    imported = os.environ.pop(KEY_ENV, "")
    if imported:
        key_id, _, secret = imported.partition(":")
        import_admin_key(key_id, secret)
    app = DomainDispatcherApplication(create_backend_app)
    cache_jsonpath()
    cache_module_list()
    fast_queues()
    fast_partition_queries()
    if args.serialize:
        undo_log_transactions()
        app = serialized(app)
    else:
        app = eventsv2.wrap(app, eventsv2.EventsV2(eventsv2.moto_delivery()))
        app = serialize_queues(app)
    run_dir = Path(args.dir)
    # waitress keeps HTTP/1.1 connections alive between requests, as AWS
    # does; werkzeug's server would make every call reconnect, and that cost
    # would swamp what eddy's benchmarks measure. With --tls, haproxy
    # terminates TLS in front of it (see start_tls_proxy).
    import waitress

    logging.getLogger("waitress").setLevel(logging.ERROR)
    # A long poll holds a thread for up to 20 s. With as few threads as a
    # worker has pollers (8 by default), every other call (deletes,
    # PutEvents) waited for a poll to end: seconds of latency, and deletes
    # late enough for messages to come back as duplicates.
    server = waitress.create_server(
        app, host=HOST, port=0, threads=64, channel_timeout=IDLE_TIMEOUT_S, ident="moto"
    )
    port = server.effective_port
    tmp = run_dir / f"{args.name}.port.tmp"
    tmp.write_text(f"{port}\n")
    tmp.rename(run_dir / f"{args.name}.port")

    def on_signal(_signum, _frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        server.run()
    finally:
        server.close()


# --- certificates -------------------------------------------------------------


def run_openssl(args, cwd):
    proc = subprocess.run(
        ["openssl", *args], cwd=cwd, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise LocalAwsError(f"openssl {args[0]} failed: {proc.stderr.strip()}")


def make_certificates(run_dir):
    """A CA for this run and a server certificate for 127.0.0.1 and localhost."""
    (run_dir / "server.ext").write_text(
        "basicConstraints = critical, CA:FALSE\n"
        "keyUsage = critical, digitalSignature, keyEncipherment\n"
        "extendedKeyUsage = serverAuth\n"
        "subjectAltName = IP:127.0.0.1, DNS:localhost\n"
        "subjectKeyIdentifier = hash\n"
        "authorityKeyIdentifier = keyid, issuer\n"
    )
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run_openssl(
        ["req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "7",
         "-subj", "/CN=eddy local test CA",
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
        run_dir,
    )
    run_openssl(
        ["req", "-new", *ec, "-keyout", "server.key", "-out", "server.csr",
         "-subj", "/CN=localhost"],
        run_dir,
    )
    run_openssl(
        ["x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
         "-CAcreateserial", "-days", "7", "-extfile", "server.ext", "-out", "server.pem"],
        run_dir,
    )
    for name in ("ca.key", "server.key"):
        (run_dir / name).chmod(0o600)
    # haproxy reads the certificate and its key from one file.
    bundle = run_dir / "server-bundle.pem"
    bundle.write_bytes((run_dir / "server.pem").read_bytes() + (run_dir / "server.key").read_bytes())
    bundle.chmod(0o600)


# --- start / stop -------------------------------------------------------------


def pid_alive(pid, run_dir=None):
    """True when pid runs this tool's serve command, or the TLS proxy of run_dir
    (a recycled pid is not ours)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    if run_dir is not None and cmdline[0].endswith(b"haproxy"):
        return str(tls_config_path(run_dir)).encode() in cmdline
    return any(arg.endswith(b"localaws.py") for arg in cmdline) and b"serve" in cmdline


def read_pid(run_dir, name):
    try:
        return int((run_dir / f"{name}.pid").read_text().strip())
    except (OSError, ValueError):
        return None


def spawn(run_dir, name, serialize, verbose, extra_env=None):
    for suffix in (".port", ".port.tmp"):
        (run_dir / f"{name}{suffix}").unlink(missing_ok=True)
    argv = [sys.executable, str(Path(__file__).resolve()), "serve", "--name", name,
            "--dir", str(run_dir)]
    argv += ["--serialize"] if serialize else []
    argv += ["--verbose"] if verbose else []
    env = dict(os.environ)
    env.update(extra_env or {})
    with open(run_dir / f"{name}.log", "ab") as log:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env,
            start_new_session=True,
        )
    (run_dir / f"{name}.pid").write_text(f"{proc.pid}\n")
    return proc


def ssl_context_for(run_dir, tls):
    if not tls:
        return None
    return ssl.create_default_context(cafile=str(run_dir / "ca.pem"))


def moto_api(port, tls_ctx, method, path, body=None, timeout=5.0):
    """One request to moto's own API; returns (status, body)."""
    if tls_ctx is not None:
        conn = http.client.HTTPSConnection(HOST, port, timeout=timeout, context=tls_ctx)
    else:
        conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request(method, path, body=body)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def serving(port, tls_ctx):
    """Whether a server answers on port (moto's 400 to a GET of reset-auth)."""
    try:
        status, _ = moto_api(port, tls_ctx, "GET", "/moto-api/reset-auth")
        return status == 400
    except (OSError, http.client.HTTPException):
        return False


def wait_until(what, log_file, proc, deadline, port_of, tls_ctx):
    """Poll until the server proc runs answers on port_of() (None: not known
    yet); return the port. Raise LocalAwsError, with the end of its log,
    when it exits first, or when the deadline passes."""
    while True:
        if proc.poll() is not None:
            log = log_file.read_text(errors="replace")[-2000:]
            raise LocalAwsError(f"{what} exited at start:\n{log}")
        if time.monotonic() > deadline:
            raise LocalAwsError(f"{what} not ready in {START_TIMEOUT_S:.0f} s")
        port = port_of()
        if port is not None and serving(port, tls_ctx):
            return port
        time.sleep(0.05)


def wait_ready(run_dir, name, proc, tls_ctx, deadline):
    """Wait for the port file, then for an HTTP answer; return the port."""
    port_file = run_dir / f"{name}.port"
    return wait_until(f"moto server '{name}'", run_dir / f"{name}.log", proc, deadline,
                      lambda: int(port_file.read_text()) if port_file.exists() else None,
                      tls_ctx)


def client(service, endpoint, key, ca_bundle, max_attempts=1):
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        service, region_name=REGION, endpoint_url=endpoint, aws_access_key_id=key[0],
        aws_secret_access_key=key[1], verify=ca_bundle if ca_bundle else True,
        config=Config(retries={"max_attempts": max_attempts, "mode": "standard"}),
    )


def create_admin_key(endpoint, ca_bundle):
    """The IAM user, admin policy and access key, created through moto's IAM API."""
    iam = client("iam", endpoint, DUMMY_KEY, ca_bundle)
    iam.create_user(UserName=ADMIN_USER)
    arn = iam.create_policy(PolicyName=ADMIN_POLICY, PolicyDocument=ADMIN_DOCUMENT)[
        "Policy"]["Arn"]
    iam.attach_user_policy(UserName=ADMIN_USER, PolicyArn=arn)
    key = iam.create_access_key(UserName=ADMIN_USER)["AccessKey"]
    return key["AccessKeyId"], key["SecretAccessKey"]


def check_auth(endpoints, key, ca_bundle):
    """With verification on, the right secret passes and a wrong one is refused."""
    from botocore.exceptions import ClientError

    calls = {"main": ("sqs", "list_queues"), "dynamodb": ("dynamodb", "list_tables")}
    for name, (service, op) in calls.items():
        getattr(client(service, endpoints[name], key, ca_bundle), op)()
        wrong = (key[0], key[1][:-1] + ("A" if key[1][-1] != "A" else "B"))
        try:
            getattr(client(service, endpoints[name], wrong, ca_bundle), op)()
        except ClientError:
            continue
        raise LocalAwsError(f"moto '{name}' accepted a wrong secret with auth on")


def tls_config_path(run_dir):
    return Path(run_dir).resolve() / "haproxy.cfg"


def tls_socket_path(run_dir):
    return Path(run_dir).resolve() / "haproxy.sock"


def start_tls_proxy(run_dir, ports, verbose, bundle=None):
    """haproxy terminating TLS for each server in ports (name -> plain port).

    Each frontend listens on a socket bound here at a free port and handed
    over as an inherited descriptor (no race for the port). Client
    connections stay open between requests for up to IDLE_TIMEOUT_S, as on
    the plain servers; connections to the servers are kept alive and reused.
    TLS 1.2 and 1.3 with haproxy's defaults, session resumption included.
    bundle is the certificate and key (default: the run's, in run_dir); the
    configuration, statistics socket, log and pid file go into run_dir.
    Returns the process and {name: TLS port}.
    """
    bundle = bundle or run_dir / "server-bundle.pem"
    listeners, tls_ports, frontends = [], {}, []
    try:
        for name, port in ports.items():
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listeners.append(sock)
            sock.bind((HOST, 0))
            sock.listen(256)
            sock.set_inheritable(True)
            tls_ports[name] = sock.getsockname()[1]
            frontends.append(
                f"frontend {name}\n"
                f"    bind fd@{sock.fileno()} ssl crt {bundle}\n"
                f"    default_backend {name}\n"
                f"backend {name}\n"
                f"    server moto {HOST}:{port}\n")
        config = (
            "global\n"
            f"    stats socket {tls_socket_path(run_dir)} mode 600 level user\n"
            "    nbthread 1\n"
            "    maxconn 4096\n"
            "defaults\n"
            "    mode http\n"
            "    timeout connect 5s\n"
            # a long poll answers within 20 s; calls wait for moto's locks
            "    timeout client 130s\n"
            "    timeout server 130s\n"
            f"    timeout http-keep-alive {IDLE_TIMEOUT_S}s\n"
            "    http-reuse always\n"
            + ("    option httplog\n    log stderr format raw local0\n" if verbose else "")
            + "".join(frontends))
        cfg = tls_config_path(run_dir)
        cfg.write_text(config)
        tls_socket_path(run_dir).unlink(missing_ok=True)
        with open(run_dir / f"{TLS_PROXY}.log", "ab") as log:
            proc = subprocess.Popen(
                ["haproxy", "-f", str(cfg), "-db"], stdin=subprocess.DEVNULL, stdout=log,
                stderr=log, pass_fds=[s.fileno() for s in listeners], start_new_session=True)
    except FileNotFoundError as err:
        raise LocalAwsError("--tls needs haproxy (run tools/bootstrap)") from err
    finally:
        for sock in listeners:
            sock.close()
    (run_dir / f"{TLS_PROXY}.pid").write_text(f"{proc.pid}\n")
    return proc, tls_ports


def wait_tls_ready(run_dir, proc, ports, tls_ctx, deadline):
    """Wait until haproxy answers over verified TLS on every port."""
    for port in ports.values():
        wait_until("haproxy", run_dir / f"{TLS_PROXY}.log", proc, deadline, lambda p=port: p,
                   tls_ctx)


def plain_endpoints(run_dir):
    """The moto servers' own plain-HTTP endpoints (behind the TLS proxy)."""
    return {name: f"http://{HOST}:{int((Path(run_dir) / f'{name}.port').read_text())}"
            for name in SERVERS}


def tls_stats(run_dir):
    """What the TLS proxy counted since it started, over both endpoints:
    connections accepted (and open now), full handshakes (new sessions),
    resumed handshakes and failed ones, and requests; the same for each
    endpoint ("main", "dynamodb") under "endpoints". None without a TLS
    proxy."""
    path = tls_socket_path(run_dir)
    if not path.exists():
        return None
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        sock.connect(str(path))
        sock.sendall(b"show stat -1 1 -1\n")  # frontends only
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    lines = data.decode().splitlines()
    header = lines[0].lstrip("# ").split(",")
    fields = {"connections": "conn_tot", "open": "scur", "full_handshakes": "ssl_sess",
              "resumed_handshakes": "ssl_reused_sess",
              "failed_handshakes": "ssl_failed_handshake", "requests": "req_tot"}
    total = dict.fromkeys(fields, 0)
    total["endpoints"] = {}
    for line in lines[1:]:
        row = dict(zip(header, line.split(",")))
        if row.get("svname") != "FRONTEND":
            continue
        mine = {key: int(row.get(column) or 0) for key, column in fields.items()}
        total["endpoints"][row["pxname"]] = mine
        for key, value in mine.items():
            total[key] += value
    return total


def start_servers(run_dir, opts, tls_ctx, deadline):
    """Spawn both servers (and the TLS proxy); under --auth the key is made on
    main and imported."""
    procs = {"main": spawn(run_dir, "main", False, opts.verbose)}
    extra = {}
    if not opts.auth:
        procs["dynamodb"] = spawn(run_dir, "dynamodb", True, opts.verbose)
    ports = {"main": wait_ready(run_dir, "main", procs["main"], None, deadline)}
    key = DUMMY_KEY
    if opts.auth:
        key = create_admin_key(f"http://{HOST}:{ports['main']}", None)
        extra[KEY_ENV] = f"{key[0]}:{key[1]}"
        procs["dynamodb"] = spawn(run_dir, "dynamodb", True, opts.verbose, extra)
    ports["dynamodb"] = wait_ready(run_dir, "dynamodb", procs["dynamodb"], None, deadline)
    if opts.auth:
        for name in SERVERS:
            status, body = moto_api(ports[name], None, "POST", "/moto-api/reset-auth", b"0")
            if status != 200:
                raise LocalAwsError(f"moto '{name}' refused reset-auth: {body!r}")
    ca_bundle = None
    scheme = "http"
    if opts.tls:
        proc, ports = start_tls_proxy(run_dir, ports, opts.verbose)
        wait_tls_ready(run_dir, proc, ports, tls_ctx, deadline)
        ca_bundle = str(run_dir / "ca.pem")
        scheme = "https"
    endpoints = {name: f"{scheme}://{HOST}:{port}" for name, port in ports.items()}
    if opts.auth:
        check_auth(endpoints, key, ca_bundle)
    return endpoints, key, ca_bundle


def env_lines(run_dir, endpoints, key, ca_bundle):
    values = {
        "AWS_ENDPOINT_URL": endpoints["main"],
        "AWS_ENDPOINT_URL_DYNAMODB": endpoints["dynamodb"],
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": key[0],
        "AWS_SECRET_ACCESS_KEY": key[1],
        "EDDY_LOCAL_AWS_DIR": str(run_dir),
    }
    if ca_bundle:
        values["AWS_CA_BUNDLE"] = ca_bundle
    no_proxy = os.environ.get("NO_PROXY", os.environ.get("no_proxy", ""))
    loopback = "127.0.0.1,localhost"
    values["NO_PROXY"] = loopback + ("," + no_proxy if no_proxy else "")
    values["no_proxy"] = values["NO_PROXY"]
    lines = ["unset AWS_SESSION_TOKEN AWS_PROFILE AWS_CA_BUNDLE"]
    lines += [f"export {name}={shlex.quote(value)}" for name, value in values.items()]
    return "\n".join(lines) + "\n"


def cmd_start(opts):
    check_moto_version()
    run_dir = Path(opts.dir).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    running = [n for n in (*SERVERS, TLS_PROXY)
               if (p := read_pid(run_dir, n)) and pid_alive(p, run_dir)]
    if running:
        raise LocalAwsError(f"already running in {run_dir} ({', '.join(running)}); "
                            f"run: tools/local-aws stop --dir {shlex.quote(str(run_dir))}")
    (run_dir / "env").unlink(missing_ok=True)
    if opts.tls:
        make_certificates(run_dir)
    tls_ctx = ssl_context_for(run_dir, opts.tls)
    deadline = time.monotonic() + START_TIMEOUT_S
    try:
        endpoints, key, ca_bundle = start_servers(run_dir, opts, tls_ctx, deadline)
    except BaseException:
        stop_dir(run_dir)
        raise
    text = env_lines(run_dir, endpoints, key, ca_bundle)
    env_file = run_dir / "env"
    env_file.write_text(text)
    env_file.chmod(0o600)
    sys.stdout.write(text)


def stop_dir(run_dir):
    """SIGTERM the recorded servers, SIGKILL what is left after 5 s."""
    pids = {}
    for name in (*SERVERS, TLS_PROXY):
        pid = read_pid(run_dir, name)
        if pid and pid_alive(pid, run_dir):
            pids[name] = pid
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + 5.0
    while any(pid_alive(p, run_dir) for p in pids.values()) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in pids.values():
        if pid_alive(pid, run_dir):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    for name in (*SERVERS, TLS_PROXY):
        for suffix in (".pid", ".port"):
            (run_dir / f"{name}{suffix}").unlink(missing_ok=True)
    tls_socket_path(run_dir).unlink(missing_ok=True)


def cmd_stop(opts):
    stop_dir(Path(opts.dir).resolve())


def cmd_tls_stats(opts):
    stats = tls_stats(Path(opts.dir).resolve())
    if stats is None:
        raise LocalAwsError(f"no TLS proxy running in {opts.dir} (start with --tls)")
    json.dump(stats, sys.stdout, indent=2)
    sys.stdout.write("\n")


# --- CloudFormation on the local AWS ------------------------------------------


def read_env_file(path):
    """Parse an env file written by `start` into a dict."""
    values = {}
    for line in Path(path).read_text().splitlines():
        if line.startswith("export "):
            name, _, value = line[len("export "):].partition("=")
            parsed = shlex.split(value)
            values[name] = parsed[0] if parsed else ""
    return values


def with_list_defaults(cfn, template_body, parameters):
    """The parameters plus the defaults of list-typed ones not given.

    moto splits a list parameter's value only when it is passed, not its default.
    """
    summary = cfn.get_template_summary(TemplateBody=template_body)
    merged = dict(parameters)
    for p in summary.get("Parameters", []):
        is_list = "List" in p.get("ParameterType", "")
        if is_list and p["ParameterKey"] not in merged and "DefaultValue" in p:
            merged[p["ParameterKey"]] = p["DefaultValue"]
    return merged


def deploy_stack(env, template_body, stack_name, parameters, timeout_s=60.0):
    """Create a CloudFormation stack in both moto processes; return its outputs.

    Both processes get the whole stack: the DynamoDB process so that the table is
    where AWS_ENDPOINT_URL_DYNAMODB points, the main one for everything else.
    The outputs returned are the main process's (names are the same in both).
    """
    key = (env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"])
    outputs = {}
    for var in ("AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL"):
        cfn = client("cloudformation", env[var], key, env.get("AWS_CA_BUNDLE"), 3)
        params = [{"ParameterKey": k, "ParameterValue": v}
                  for k, v in with_list_defaults(cfn, template_body, parameters).items()]
        cfn.create_stack(StackName=stack_name, TemplateBody=template_body,
                         Parameters=params, Capabilities=["CAPABILITY_NAMED_IAM"])
        deadline = time.monotonic() + timeout_s
        while True:
            stack = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
            if stack["StackStatus"] == "CREATE_COMPLETE":
                break
            if not stack["StackStatus"].endswith("IN_PROGRESS"):
                raise LocalAwsError(f"stack {stack_name} on {env[var]}: "
                                    f"{stack['StackStatus']} {stack.get('StackStatusReason', '')}")
            if time.monotonic() > deadline:
                raise LocalAwsError(f"stack {stack_name} not created in {timeout_s:.0f} s")
            time.sleep(0.1)
        outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    return outputs


def cmd_deploy(opts):
    env_file = Path(opts.dir).resolve() / "env"
    if not env_file.exists():
        raise LocalAwsError(f"no local AWS in {env_file.parent}: run tools/local-aws start")
    params = {"DeployService": "false"}
    for item in opts.param:
        name, sep, value = item.partition("=")
        if not sep:
            raise LocalAwsError(f"--param wants NAME=VALUE, got {item!r}")
        params[name] = value
    template = Path(opts.template).read_text()
    outputs = deploy_stack(read_env_file(env_file), template, opts.stack, params)
    json.dump(outputs, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")


# --- command line -------------------------------------------------------------


def parse_args(argv):
    default_dir = str(ROOT / ".run" / "local-aws")
    parser = argparse.ArgumentParser(
        prog="tools/local-aws",
        description="Run moto on 127.0.0.1 as a local AWS for eddy (see tools/localaws.py).")
    sub = parser.add_subparsers(dest="command", required=True,
                                metavar="{start,stop,deploy,tls-stats}")
    start = sub.add_parser("start", help="start the servers, print export lines")
    start.add_argument("--tls", action="store_true", help="HTTPS with a CA made for the run")
    start.add_argument("--auth", action="store_true", help="SigV4 verification on")
    start.add_argument("--verbose", action="store_true", help="log every request")
    stop = sub.add_parser("stop", help="stop the servers started in DIR")
    stats = sub.add_parser("tls-stats", help="connections and TLS handshakes (full, "
                           "resumed) the --tls proxy counted, as JSON")
    deploy = sub.add_parser("deploy", help="create a CloudFormation stack (data only)")
    deploy.add_argument("--template", default=str(ROOT / "deploy" / "cloudformation.yaml"))
    deploy.add_argument("--stack", default="eddy")
    deploy.add_argument("--param", action="append", default=[], metavar="NAME=VALUE")
    serve = sub.add_parser("serve")  # internal: one server process
    serve.add_argument("--name", required=True)
    serve.add_argument("--serialize", action="store_true")
    serve.add_argument("--verbose", action="store_true")
    for p in (start, stop, stats, deploy, serve):
        p.add_argument("--dir", default=default_dir, help=f"state directory ({default_dir})")
    return parser.parse_args(argv)


def main(argv=None):
    opts = parse_args(sys.argv[1:] if argv is None else argv)
    handlers = {"start": cmd_start, "stop": cmd_stop, "deploy": cmd_deploy,
                "tls-stats": cmd_tls_stats, "serve": cmd_serve}
    try:
        handlers[opts.command](opts)
    except LocalAwsError as err:
        print(f"local-aws: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
