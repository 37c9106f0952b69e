"""A second program on eddy's table, written to github.com/a-h/stream's rules.

a-h/stream cannot be fetched as a Go module here, so this is its store.go
(NewStore, Get, Put/Prepare/Execute, QueryWithHistory) in Python, with the
part of aws-sdk-go-v2's attributevalue encoder and decoder that store.go
relies on:

- Encoding: NewStore sets the encoder's TagKey to the codec tag. Without
  WithCodecTag (the default store, and a-h/stream's own example) no tag
  applies and attributes are named after the Go fields (ID, Balance,
  IsCoinInSlot); with WithCodecTag("json") after the json tags.
- Decoding: an attribute goes to the field of the same name, else to the
  first field whose name matches without regard to case; unknown attributes
  are ignored; a value of the wrong type is an error (as the Go decoder's
  UnmarshalTypeError).
- Records: createRecord adds _namespace, _pk, _seq, _sk, _typ, _ts, _date.
  Sort keys STATE, STATE/<seq>, INBOUND/<seq>/<idx>/<type>,
  OUTBOUND/<seq>/<idx>/<type>. QueryWithHistory splits each sort key at its
  first "/" and reads only STATE, INBOUND and OUTBOUND items; an INBOUND or
  OUTBOUND type without a registered reader is an error ("inbound event: no
  reader for ...").

Field kinds: string, int, float, bool, bytes ([]byte: B), and the sets a Go
type with its own marshaller writes (stringset: SS, numberset: NS,
binaryset: BS), which the decoder also takes from a list.
"""

import base64
from datetime import datetime, timezone


class DecodeError(Exception):
    pass


class OptimisticConcurrency(Exception):
    """ErrOptimisticConcurrency."""


class Field:
    def __init__(self, go, json_tag, kind):
        self.go, self.json, self.kind = go, json_tag, kind


def struct(*fields):
    return [Field(*f) for f in fields]


SLOT_MACHINE = struct(("ID", "id", "string"), ("Balance", "balance", "int"),
                      ("Payout", "payout", "int"), ("WinChance", "winChance", "float"),
                      ("Games", "games", "int"), ("Wins", "wins", "int"),
                      ("Losses", "losses", "int"), ("IsCoinInSlot", "isCoinInSlot", "bool"))
INSERT_COIN = struct()
PULL_HANDLE = struct(("UserID", "userId", "string"))
GAME_PLAYED = struct(("MachineID", "machineId", "string"), ("Won", "won", "bool"))
PAYOUT_MADE = struct(("UserID", "userId", "string"), ("Amount", "amount", "int"))
# eddy's slot machine names its outbound events as the original example did
GAME_RESULT = struct(("MachineID", "machineId", "string"), ("Win", "win", "bool"))
PAYOUT = struct(("UserID", "userId", "string"), ("Amount", "amount", "int"))


def _name(f, codec):
    return f.json if codec == "json" and f.json else f.go


def _encode_value(kind, v):
    if v is None:
        return {"NULL": True}
    if kind == "string":
        return {"S": v}
    if kind in ("int", "float"):
        return {"N": repr(v)}
    if kind == "bool":
        return {"BOOL": v}
    if kind == "bytes":
        return {"B": v}
    if kind == "stringset":
        return {"SS": list(v)}
    if kind == "numberset":
        return {"NS": [repr(x) for x in v]}
    if kind == "binaryset":
        return {"BS": list(v)}
    raise ValueError(kind)


def encode(fields, values, codec):
    """Marshal a struct (values by Go field name) into attributes."""
    return {_name(f, codec): _encode_value(f.kind, values.get(f.go)) for f in fields}


def _decode_value(kind, av, name):
    (t, v), = av.items()
    if t == "NULL":
        return None
    want = {"string": "S", "int": "N", "float": "N", "bool": "BOOL", "bytes": "B",
            "stringset": ("SS", "L"), "numberset": ("NS", "L"), "binaryset": ("BS", "L")}[kind]
    if t not in (want if isinstance(want, tuple) else (want,)):
        raise DecodeError(f"cannot unmarshal {t} into {name} ({kind})")
    if kind == "int":
        try:
            return int(v)
        except ValueError as e:
            raise DecodeError(f"{name}: {v} is not an integer") from e
    if kind == "float":
        return float(v)
    if kind == "bytes":
        return base64.b64decode(v) if isinstance(v, str) else v
    if t == "L":
        inner = {"stringset": "string", "numberset": "float", "binaryset": "bytes"}[kind]
        return [_decode_value(inner, x, name) for x in v]
    if kind == "numberset":
        return [float(x) for x in v]
    return v


def decode(fields, item):
    """Unmarshal attributes into a struct: exact name first, else EqualFold."""
    out = {f.go: None for f in fields}
    for name, av in item.items():
        f = next((f for f in fields if f.go == name), None) or \
            next((f for f in fields if f.go.lower() == name.lower()), None)
        if f is not None:
            out[f.go] = _decode_value(f.kind, av, name)
    return out


class Store:
    """DynamoDBStore. codec: None for the default store, "json" for
    WithCodecTag("json"). Decoding matches the Go field names (the json
    tags only change what is written, as attributevalue does when the json
    tag names match the fields without regard to case)."""

    def __init__(self, ddb, table, namespace, codec=None, history=False):
        self.ddb, self.table, self.ns = ddb, table, namespace
        self.codec, self.history = codec, history

    def pk(self, ident):
        return f"{self.ns}/{ident}"

    def _decode(self, fields, item):
        if self.codec == "json":  # the decoder looks for the json names first
            renamed = {}
            for name, av in item.items():
                f = next((f for f in fields if f.json == name), None)
                renamed[f.go if f else name] = av
            item = renamed
        return decode(fields, item)

    def get(self, ident, fields):
        item = self.ddb.get_item(TableName=self.table, ConsistentRead=True,
                                 Key={"_pk": {"S": self.pk(ident)},
                                      "_sk": {"S": "STATE"}}).get("Item")
        if not item:
            raise KeyError("state not found")
        return int(item["_seq"]["N"]), self._decode(fields, item)

    def record(self, ident, sk, seq, fields, values, name):
        now = datetime.now(timezone.utc).replace(microsecond=0)
        rec = encode(fields, values, self.codec)
        rec.update({"_namespace": {"S": self.ns}, "_pk": {"S": self.pk(ident)},
                    "_seq": {"N": str(seq)}, "_sk": {"S": sk}, "_typ": {"S": name},
                    "_ts": {"N": str(int(now.timestamp()))},
                    "_date": {"S": now.strftime("%Y-%m-%dT%H:%M:%SZ")}})
        return rec

    def put(self, ident, at_seq, state_fields, state, inbound, outbound):
        """inbound, outbound: [(type, fields, values)]."""
        at_seq += 1
        cond = {"ConditionExpression": "attribute_not_exists(#_pk) OR #_seq = :_seq",
                "ExpressionAttributeNames": {"#_pk": "_pk", "#_seq": "_seq"},
                "ExpressionAttributeValues": {":_seq": {"N": str(at_seq - 1)}}}
        keys = ["STATE"] + ([f"STATE/{at_seq}"] if self.history else [])
        items = [{"Put": {"TableName": self.table,
                          "Item": self.record(ident, sk, at_seq, state_fields, state, self.ns),
                          **cond}} for sk in keys]
        for kind, events in (("INBOUND", inbound), ("OUTBOUND", outbound)):
            for i, (name, fields, values) in enumerate(events):
                items.append({"Put": {
                    "TableName": self.table,
                    "Item": self.record(ident, f"{kind}/{at_seq}/{i}/{name}", at_seq, fields,
                                        values, name),
                    "ConditionExpression": "attribute_not_exists(#_pk)",
                    "ExpressionAttributeNames": {"#_pk": "_pk"}}})
        try:
            self.ddb.transact_write_items(TransactItems=items)
        except self.ddb.exceptions.TransactionCanceledException as e:
            raise OptimisticConcurrency(str(e)) from e
        return at_seq

    def query_with_history(self, ident, state_fields, inbound_readers, outbound_readers):
        """(seq, state, [(type, event)], [(type, event)], [state history]);
        readers map a type to its fields, as InboundEventReader.Add does."""
        seq, state, found = None, None, False
        inbound, outbound, history = [], [], []
        kwargs = {}
        while True:
            page = self.ddb.query(TableName=self.table, ConsistentRead=True,
                                  KeyConditionExpression="#_pk = :_pk",
                                  ExpressionAttributeNames={"#_pk": "_pk"},
                                  ExpressionAttributeValues={":_pk": {"S": self.pk(ident)}},
                                  **kwargs)
            for r in page["Items"]:
                prefix, _, suffix = r["_sk"]["S"].partition("/")
                if prefix == "STATE":
                    if suffix == "":
                        found = True
                        state = self._decode(state_fields, r)
                        seq = int(r["_seq"]["N"])
                    else:
                        history.append(self._decode(state_fields, r))
                elif prefix in ("INBOUND", "OUTBOUND"):
                    typ = r["_typ"]["S"]
                    readers = inbound_readers if prefix == "INBOUND" else outbound_readers
                    if typ not in readers:
                        raise DecodeError(f"{prefix.lower()} event: no reader for \"{typ}\"")
                    (inbound if prefix == "INBOUND" else outbound).append(
                        (typ, self._decode(readers[typ], r)))
            if "LastEvaluatedKey" not in page:
                break
            kwargs = {"ExclusiveStartKey": page["LastEvaluatedKey"]}
        if not found:
            raise KeyError("state not found")
        return seq, state, inbound, outbound, history
