"""The EventBridge Custom Event Bus (the eventbridgev2 API) for the local AWS.

moto does not serve this API, so the local AWS's main process answers it here,
in front of moto: POST /service/AWSEventsV2/operation/<Op> with CBOR bodies
(Smithy RPC v2 CBOR), decoded and encoded by botocore's own CBOR code, every
input checked against botocore's model of the API (types, required members,
lengths, enums, patterns; unlike AWS, unknown members are refused too, so a
mistake in a client's encoding shows at once).

What it keeps, in memory:
  - buses (CreateEventBus, DescribeEventBus, ListEventBuses, DeleteEventBus),
    ACTIVE at once;
  - subscribers (CreateSubscriber, DescribeSubscriber, ListSubscribers,
    DeleteSubscriber) whose target is an SQS queue of moto's, with the
    model's filters (EventBridge patterns, matched by moto's matcher, on the
    event's data, metadata or system metadata);
  - deduplication: an entry whose DeduplicationId (or content hash, with
    DeduplicationConfiguration CONTENT_BASED) the bus accepted within the
    last 5 minutes is answered SuccessCode DEDUPLICATED and not delivered.

PutEvents delivers each accepted entry at once, in entry order, to every
RUNNING subscriber whose filters match. A FIFO subscriber sends to its queue
with MessageGroupId = the entry's EventGroupId (or the subscriber's
SqsParameters.MessageGroupId when it is a literal) and
MessageDeduplicationId = the service's event id, so a FIFO queue hands each
group's events out in the order they were put. The message body is the
event with its metadata (Transformer WITH_METADATA, the default here):
{"id", "source", "detail-type", "time", "account", "region", "resources",
"detail", "event-group-id", "sequence-number"}; RAW sends the Detail alone.
JSONata transformers and expressions are not evaluated (refused).

With SigV4 verification on (local-aws --auth), requests are verified with
moto's own IAM check. This is a development tool, not part of eddy.
"""

import datetime
import hashlib
import io
import json
import re
import secrets
import string
import threading
import time
import traceback

PREFIX = "/service/AWSEventsV2/operation/"
NAMESPACE = "com.amazonaws.eventbridgev2#"
DEDUPE_SECONDS = 300.0
MAX_REQUEST_ENTRY_BYTES = 1048576
ID_CHARS = string.ascii_lowercase + string.digits


class ApiError(Exception):
    """An error reply: the model's exception name, its HTTP status, a message."""

    def __init__(self, code, message, status=None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def _model():
    import botocore.session

    return botocore.session.get_session().get_service_model("eventbridgev2")


def _new_id():
    return "".join(secrets.choice(ID_CHARS) for _ in range(25))


# --- checking input against the model -----------------------------------------


def _check_len(value, shape, path, under, over):
    """The model's min and max for len(value); under and over say how it
    fails, with {} for the bound."""
    meta = shape.metadata
    if "min" in meta and len(value) < meta["min"]:
        raise ApiError("InvalidInputException", f"{path}: " + under.format(meta["min"]))
    if "max" in meta and len(value) > meta["max"]:
        raise ApiError("InvalidInputException", f"{path}: " + over.format(meta["max"]))


def _check_string(value, shape, path):
    if not isinstance(value, str):
        raise ApiError("InvalidInputException", f"{path}: expected a string")
    _check_len(value, shape, path, "shorter than {}", "longer than {}")
    meta = shape.metadata
    if shape.enum and value not in shape.enum:
        raise ApiError("InvalidInputException", f"{path}: not one of {shape.enum}")
    if "pattern" in meta and not re.search(meta["pattern"], value):
        raise ApiError("InvalidInputException", f"{path}: does not match {meta['pattern']}")


def _check_count(value, shape, path, kind):
    if not isinstance(value, kind):
        raise ApiError("InvalidInputException", f"{path}: expected a {kind.__name__}")
    _check_len(value, shape, path, "fewer than {} items", "more than {} items")


def check(value, shape, path="input"):
    """Raise InvalidInputException when value does not fit the model's shape."""
    t = shape.type_name
    if t == "structure":
        if not isinstance(value, dict):
            raise ApiError("InvalidInputException", f"{path}: expected a structure")
        for name in shape.required_members:
            if name not in value:
                raise ApiError("InvalidInputException", f"{path}.{name}: required")
        for name, v in value.items():
            if name not in shape.members:
                raise ApiError("InvalidInputException", f"{path}.{name}: not in the model")
            check(v, shape.members[name], f"{path}.{name}")
    elif t == "list":
        _check_count(value, shape, path, list)
        for i, v in enumerate(value):
            check(v, shape.member, f"{path}[{i}]")
    elif t == "map":
        _check_count(value, shape, path, dict)
        for k, v in value.items():
            check(k, shape.key, f"{path} key")
            check(v, shape.value, f"{path}.{k}")
    elif t == "string":
        _check_string(value, shape, path)
    elif t in ("integer", "long"):
        if not isinstance(value, int) or isinstance(value, bool):
            raise ApiError("InvalidInputException", f"{path}: expected an integer")
        meta = shape.metadata
        if ("min" in meta and value < meta["min"]) or ("max" in meta and value > meta["max"]):
            raise ApiError("InvalidInputException", f"{path}: out of range")
    elif t == "boolean" and not isinstance(value, bool):
        raise ApiError("InvalidInputException", f"{path}: expected a boolean")
    elif t == "timestamp" and not isinstance(value, (datetime.datetime, int, float)):
        raise ApiError("InvalidInputException", f"{path}: expected a timestamp")
    elif t == "blob" and not isinstance(value, (bytes, bytearray)):
        raise ApiError("InvalidInputException", f"{path}: expected a blob")


# --- the service ---------------------------------------------------------------


class EventsV2:
    """The buses and subscribers of one local AWS process.

    deliver(queue_arn, body, group_id, dedup_id) sends one message; clock()
    gives seconds (monotonic) for the deduplication window. Both are injected
    so the behaviour can be tested without moto and without waiting.
    """

    def __init__(self, deliver, account="123456789012", region="us-east-1",
                 clock=time.monotonic, dedupe_seconds=DEDUPE_SECONDS):
        self.deliver = deliver
        self.account = account
        self.region = region
        self.clock = clock
        self.dedupe_seconds = dedupe_seconds
        self.buses = {}  # arn -> dict
        self.subscribers = {}  # arn -> dict
        self.lock = threading.Lock()

    # buses

    @staticmethod
    def _find(table, arn, what):
        found = table.get(arn)
        if found is None:
            raise ApiError("ResourceNotFoundException", f"{what} {arn} does not exist")
        return found

    def _bus(self, arn):
        return self._find(self.buses, arn, "event bus")

    def _bus_view(self, bus):
        keys = ("EventBusArn", "Name", "Description", "State", "CreationTime",
                "LastModifiedTime")
        return {k: bus[k] for k in keys if k in bus}

    def create_event_bus(self, req):
        if any(b["Name"] == req["Name"] for b in self.buses.values()):
            raise ApiError("ResourceAlreadyExistsException", f"bus {req['Name']} exists")
        now = datetime.datetime.now(datetime.timezone.utc)
        arn = (f"arn:aws:events:{self.region}:{self.account}:event-busv2/"
               f"{req['Name']}/{_new_id()}")
        bus = {"EventBusArn": arn, "Name": req["Name"], "State": "ACTIVE",
               "CreationTime": now, "LastModifiedTime": now, "dedupe": {}, "seq": 0}
        if "Description" in req:
            bus["Description"] = req["Description"]
        self.buses[arn] = bus
        return self._bus_view(bus)

    def describe_event_bus(self, req):
        return self._bus_view(self._bus(req["EventBusArn"]))

    def list_event_buses(self, req):
        prefix = req.get("NamePrefix", "")
        return {"EventBuses": [self._bus_view(b) for b in self.buses.values()
                               if b["Name"].startswith(prefix)]}

    def delete_event_bus(self, req):
        arn = req["EventBusArn"]
        self._bus(arn)
        if any(s["EventBusArn"] == arn for s in self.subscribers.values()):
            raise ApiError("ResourceInUseException", "the bus has subscribers")
        del self.buses[arn]
        return {}

    # subscribers

    def _subscriber(self, arn):
        return self._find(self.subscribers, arn, "subscriber")

    def create_subscriber(self, req):
        self._bus(req["EventBusArn"])
        if any(s["Name"] == req["Name"] for s in self.subscribers.values()):
            raise ApiError("ResourceAlreadyExistsException", f"subscriber {req['Name']} exists")
        target = req["InvokeConfiguration"]["TargetArn"]
        if not target.startswith("arn:aws:sqs:"):
            raise ApiError("InvalidInputException",
                           "the local AWS delivers to SQS queues only")
        sqs = req["InvokeConfiguration"].get("SqsParameters", {})
        for value in (sqs.get("MessageGroupId", ""), sqs.get("MessageDeduplicationId", "")):
            if "{%" in value:
                raise ApiError("InvalidInputException",
                               "the local AWS does not evaluate JSONata expressions")
        transformer = req.get("Transformer", {}).get("Type", "WITH_METADATA")
        if transformer == "JSONATA":
            raise ApiError("InvalidInputException",
                           "the local AWS does not evaluate JSONata transformers")
        filters = req.get("FilterConfiguration", {}).get("Filters", [])
        if not filters:
            raise ApiError("InvalidInputException",
                           "FilterConfiguration.Filters: at least one filter is required")
        from moto.events.models import EventPattern

        try:
            patterns = [(f["Scope"], EventPattern.load(f["Pattern"])) for f in filters]
        except Exception as err:  # moto's own validation error
            raise ApiError("InvalidInputException", f"a filter pattern is not valid: {err}")
        now = datetime.datetime.now(datetime.timezone.utc)
        arn = f"arn:aws:events:{self.region}:{self.account}:subscriber/{req['Name']}/{_new_id()}"
        sub = dict(req)
        sub.update({"SubscriberArn": arn, "Type": req.get("Type", "UNORDERED"),
                    "State": req.get("State", "RUNNING"), "CreationTime": now,
                    "LastModifiedTime": now, "StartingPosition": req.get("StartingPosition",
                                                                          "LATEST")})
        sub.pop("ClientToken", None)
        sub.pop("Tags", None)
        self.subscribers[arn] = sub
        self._patterns = getattr(self, "_patterns", {})
        self._patterns[arn] = (patterns, transformer)
        keys = ("SubscriberArn", "Name", "EventBusArn", "Type", "StartingPosition", "State",
                "CreationTime")
        return {k: sub[k] for k in keys}

    def describe_subscriber(self, req):
        sub = self._subscriber(req["SubscriberArn"])
        return dict(sub)

    def list_subscribers(self, req):
        bus = req.get("EventBusArn")
        return {"Subscribers": [
            {k: s[k] for k in ("SubscriberArn", "Name", "EventBusArn", "Type", "State",
                               "CreationTime")}
            for s in self.subscribers.values() if bus is None or s["EventBusArn"] == bus]}

    def delete_subscriber(self, req):
        arn = req["SubscriberArn"]
        self._subscriber(arn)
        del self.subscribers[arn]
        self._patterns.pop(arn, None)
        return {}

    # publishing

    def _dedupe_key(self, entry, content_based):
        meta = entry.get("SystemMetadata", {})
        if "DeduplicationId" in meta:
            return "id:" + meta["DeduplicationId"]
        if content_based:
            text = json.dumps([entry["Source"], entry["DetailType"], entry.get("Detail"),
                               entry.get("Resources", [])])
            return "content:" + hashlib.sha256(text.encode()).hexdigest()
        return None

    def _seen(self, bus, key, now):
        """The event id a key was accepted under within the window, or None."""
        dedupe = bus["dedupe"]
        for k in [k for k, (t, _) in dedupe.items() if now - t >= self.dedupe_seconds]:
            del dedupe[k]  # expired
        hit = dedupe.get(key)
        return hit[1] if hit else None

    def _event(self, bus, entry, event_id, seq):
        when = entry.get("Time") or datetime.datetime.now(datetime.timezone.utc)
        if isinstance(when, (int, float)):
            when = datetime.datetime.fromtimestamp(when, datetime.timezone.utc)
        detail = entry.get("Detail")
        meta = entry.get("SystemMetadata", {})
        return {
            "id": event_id, "source": entry["Source"], "detail-type": entry["DetailType"],
            "time": when.strftime("%Y-%m-%dT%H:%M:%SZ"), "account": self.account,
            "region": self.region, "resources": entry.get("Resources", []),
            "detail": json.loads(detail) if detail else {},
            "event-group-id": meta.get("EventGroupId"), "sequence-number": seq,
            "event-bus-arn": bus["EventBusArn"],
        }

    def _matches(self, sub_arn, event):
        patterns, _ = self._patterns[sub_arn]
        views = {
            "DATA": event["detail"],
            "METADATA": {k: event[k] for k in ("source", "detail-type", "resources", "time",
                                               "account", "region", "id")},
            "SYSTEM_METADATA": {"EventGroupId": event["event-group-id"]},
        }
        return all(p.matches_event(views[scope]) for scope, p in patterns)

    def _fan_out(self, bus, event, detail_text):
        for arn, sub in self.subscribers.items():
            if sub["EventBusArn"] != bus["EventBusArn"] or sub["State"] != "RUNNING":
                continue
            if not self._matches(arn, event):
                continue
            _, transformer = self._patterns[arn]
            body = detail_text if transformer == "RAW" else json.dumps(event)
            sqs = sub["InvokeConfiguration"].get("SqsParameters", {})
            group = dedup = None
            if sub["Type"] == "FIFO":
                group = sqs.get("MessageGroupId") or event["event-group-id"] or "default"
                dedup = sqs.get("MessageDeduplicationId") or event["id"]
            self.deliver(sub["InvokeConfiguration"]["TargetArn"], body, group, dedup)

    def put_events(self, req):
        bus = self._bus(req["EventBusArn"])
        entries = req["Entries"]
        size = 0
        for e in entries:
            size += len(e["Source"]) + len(e["DetailType"]) + len(e.get("Detail", ""))
            size += sum(len(r) for r in e.get("Resources", [])) + (14 if "Time" in e else 0)
            meta = e.get("SystemMetadata", {})
            size += len(meta.get("EventGroupId", "")) + len(meta.get("DeduplicationId", ""))
        if size > MAX_REQUEST_ENTRY_BYTES:
            raise ApiError("InvalidInputException",
                           f"the entries are {size} bytes, over the 1 MiB limit")
        content_based = req.get("DeduplicationConfiguration", {}).get(
            "DeduplicationType") == "CONTENT_BASED"
        results, failed, now = [], 0, self.clock()
        for e in entries:
            detail = e.get("Detail", "{}")
            try:
                parsed = json.loads(detail)
                if not isinstance(parsed, dict):
                    raise ValueError("not an object")
            except ValueError:
                failed += 1
                results.append({"ErrorCode": "MalformedDetail",
                                "ErrorMessage": "Detail is not a JSON object"})
                continue
            key = self._dedupe_key(e, content_based)
            seen = self._seen(bus, key, now) if key else None
            if seen is not None:
                results.append({"EventId": seen, "SuccessCode": "DEDUPLICATED"})
                continue
            bus["seq"] += 1
            event_id = f"{secrets.token_hex(8)}-{bus['seq']:010d}"
            seq = f"{bus['seq']:020d}"
            if key:
                bus["dedupe"][key] = (now, event_id)
            self._fan_out(bus, self._event(bus, e, event_id, seq), detail)
            results.append({"EventId": event_id, "SequenceNumber": seq,
                            "SuccessCode": "PUBLISHED"})
        return {"FailedEntryCount": failed, "Entries": results}

    OPERATIONS = {
        "CreateEventBus": create_event_bus, "DescribeEventBus": describe_event_bus,
        "ListEventBuses": list_event_buses, "DeleteEventBus": delete_event_bus,
        "CreateSubscriber": create_subscriber, "DescribeSubscriber": describe_subscriber,
        "ListSubscribers": list_subscribers, "DeleteSubscriber": delete_subscriber,
        "PutEvents": put_events,
    }

    def call(self, op, req, model):
        """Check req against the model and run op; the reply as a dict."""
        if op not in self.OPERATIONS:
            raise ApiError("UnknownOperationException",
                           f"the local AWS does not serve {op}", 404)
        operation = model.operation_model(op)
        check(req, operation.input_shape)
        with self.lock:
            return self.OPERATIONS[op](self, req)


# --- HTTP -----------------------------------------------------------------------


def _fit(value, shape):
    """value with only the members the output shape has (the views keep more)."""
    if shape.type_name == "structure" and isinstance(value, dict):
        return {k: _fit(v, shape.members[k]) for k, v in value.items()
                if k in shape.members and v is not None}
    if shape.type_name == "list" and isinstance(value, list):
        return [_fit(v, shape.member) for v in value]
    return value


class Codec:
    """CBOR bodies through botocore's own parser and serializer."""

    def __init__(self):
        from botocore.parsers import RpcV2CBORParser
        from botocore.serialize import RpcV2CBORSerializer

        self.model = _model()
        self.parser = RpcV2CBORParser()
        self.serializer = RpcV2CBORSerializer()

    def decode(self, body):
        if not body:
            return {}
        stream = io.BufferedReader(io.BytesIO(body))
        value = self.parser.parse_data_item(stream)
        if stream.read(1):
            raise ApiError("InvalidInputException", "trailing bytes after the CBOR body")
        return value

    def encode(self, value, shape):
        out = bytearray()
        self.serializer._serialize_data_item(out, _fit(value, shape), shape)
        return bytes(out)

    def encode_error(self, err):
        out = bytearray(b"\xa2")  # a map of two text pairs
        for text in ("__type", NAMESPACE + err.code, "message", err.message):
            self.serializer._serialize_type_string(out, text, None, None)
        return bytes(out)

    def status_of(self, err):
        if err.status:
            return err.status
        try:
            return self.model.shape_for(err.code).metadata["error"]["httpStatusCode"]
        except Exception:
            return 400


def _headers(environ):
    from werkzeug.datastructures import EnvironHeaders

    return EnvironHeaders(environ)


def _verify(environ, headers, body, op, region_out):
    """moto's SigV4 and IAM check when auth is on (local-aws --auth)."""
    from moto import settings
    from moto.core.authorization import ActionAuthenticatorMixin

    if ActionAuthenticatorMixin.request_count < settings.INITIAL_NO_AUTH_ACTION_COUNT:
        ActionAuthenticatorMixin.request_count += 1
        return
    from moto.iam.access_control import IAMRequest

    if "Authorization" not in headers:
        raise ApiError("MissingAuthenticationTokenException", "no Authorization header", 403)
    request = IAMRequest(account_id="123456789012", method="POST",
                         path=environ.get("PATH_INFO", "/"), data={}, body=body,
                         headers=headers, action=op)
    region_out.append(request._region)
    request.check_signature()
    request.check_action_permitted("*")


def wrap(app, service):
    """A WSGI app answering the Custom Event Bus API, passing the rest to app."""
    codec = Codec()

    def respond(start_response, status, body, request_id):
        start_response(f"{status} {'OK' if status < 400 else 'Error'}", [
            ("Content-Type", "application/cbor"), ("smithy-protocol", "rpc-v2-cbor"),
            ("x-amzn-RequestId", request_id), ("Content-Length", str(len(body)))])
        return [body]

    def dispatch(environ, start_response):
        path = environ.get("PATH_INFO", "")
        if not path.startswith(PREFIX):
            return app(environ, start_response)
        op = path[len(PREFIX):]
        request_id = secrets.token_hex(16)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        headers = _headers(environ)
        try:
            if environ.get("REQUEST_METHOD") != "POST":
                raise ApiError("InvalidInputException", "RPC v2 calls are POSTs", 405)
            if headers.get("Smithy-Protocol") != "rpc-v2-cbor":
                raise ApiError("InvalidInputException", "smithy-protocol: rpc-v2-cbor missing")
            if headers.get("Content-Type") != "application/cbor" and body:
                raise ApiError("InvalidInputException", "Content-Type is not application/cbor")
            try:
                _verify(environ, headers, body, op, [])
            except ApiError:
                raise
            except Exception as err:  # moto's auth errors carry their own code
                code = getattr(err, "error_type", None) or type(err).__name__
                raise ApiError(code, str(getattr(err, "message", err)), 403)
            try:
                req = codec.decode(body)
            except ApiError:
                raise
            except Exception as err:
                raise ApiError("InvalidInputException", f"the body is not CBOR: {err}")
            reply = service.call(op, req, codec.model)
            out = codec.encode(reply, codec.model.operation_model(op).output_shape)
            return respond(start_response, 200, out, request_id)
        except ApiError as err:
            return respond(start_response, codec.status_of(err), codec.encode_error(err),
                           request_id)
        except Exception as err:  # noqa: BLE001  (a bug here: answer as AWS would)
            traceback.print_exc()
            fault = ApiError("InternalException", f"{type(err).__name__}: {err}", 500)
            return respond(start_response, 500, codec.encode_error(fault), request_id)

    return dispatch


def moto_delivery():
    """deliver() for EventsV2: send to a queue of this process's moto."""
    from moto.sqs.models import sqs_backends

    def deliver(queue_arn, body, group_id, dedup_id):
        _, _, _, region, account, name = queue_arn.split(":", 5)
        backend = sqs_backends[account][region]
        backend.send_message(name, body, deduplication_id=dedup_id, group_id=group_id)

    return deliver
