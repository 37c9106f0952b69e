"""The IAM actions of deploy/cloudformation.yaml, derived from the code, both ways.

The task role must grant exactly what `eddy worker` and `eddy relay` can call,
and the operators' managed policy exactly what the other commands (`eddy get`,
`history`, `replay`, ...) can call: no action the code never calls, none
missing. Nothing is listed by hand here; the actions come from the sources:

1. The service clients (src/svc/*.c): each file's client is initialised with
   an EDDY_AWS_* service, whose signing name (src/aws/endpoint.c) is the IAM
   prefix; a string literal in a client function that is an operation of that
   service in botocore's model (by the service's target prefix) is an
   operation that function calls.
2. A call graph of every function in src/ (a reference to a function's name,
   called or passed as a callback, is an edge; file-scope tables count as
   nodes), from the commands' functions in src/cli/commands.c.
3. Operation to IAM action: the batch forms need the action of the single form
   (DeleteMessageBatch -> sqs:DeleteMessage, ...), and TransactWriteItems has
   no action of its own: IAM authorises each item as the write it is, so the
   item kinds (EDDY_DDB_PUT, ...) that reachable code outside src/svc names
   decide.

Resources are checked in test_template.py.
"""

import os
import re
import sys
from pathlib import Path

from cfnlint.decode import decode_str

ROOT = Path(os.environ.get("EDDY_SOURCE_ROOT", Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(ROOT / "tests" / "integration"))
import awsenv  # noqa: E402

SERVICE_COMMANDS = {"worker", "relay"}  # run by the task; the rest are operators' commands
BATCH_ACTIONS = {"DeleteMessageBatch": "DeleteMessage",
                 "ChangeMessageVisibilityBatch": "ChangeMessageVisibility",
                 "SendMessageBatch": "SendMessage"}
TXN_KIND_ACTIONS = {"EDDY_DDB_PUT": "PutItem", "EDDY_DDB_UPDATE": "UpdateItem",
                    "EDDY_DDB_DELETE": "DeleteItem", "EDDY_DDB_CHECK": "ConditionCheckItem"}
TXN_OPERATIONS = {"TransactWriteItems"}

TOKEN = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|[A-Za-z_]\w*|\S')


def tokens(text):
    # Comments out in one pass with the literals, so "http://" in a string is no comment.
    text = re.sub(r'"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'|/\*.*?\*/|//[^\n]*',
                  lambda m: " " if m.group(0)[0] == "/" else m.group(0), text, flags=re.S)
    text = re.sub(r"^\s*#.*?(?<!\\)$", " ", text, flags=re.M | re.S)  # preprocessor lines
    return TOKEN.findall(text)


class Node:
    def __init__(self, name, path, static):
        self.name, self.path, self.static = name, path, static
        self.refs, self.literals = set(), set()


def nodes_of(path):
    """Functions and file-scope initialised tables of one C file."""
    toks = tokens(path.read_text())
    out, i, start = [], 0, 0  # start: first token of the current top-level declaration
    while i < len(toks):
        t = toks[i]
        if t in (";", "}"):
            start = i + 1
        elif t == "{":
            head = toks[start:i]
            name = decl_name(head)
            end = matching(toks, i)
            if name:
                node = Node(name, path, "static" in head)
                for b in toks[i + 1:end]:
                    if b.startswith('"'):
                        node.literals.add(b[1:-1])
                    elif re.match(r"[A-Za-z_]", b):
                        node.refs.add(b)
                out.append(node)
            i, start = end, end + 1
            if i + 1 < len(toks) and toks[i + 1] == ";":  # a table's closing `};`
                i += 1
                start = i + 1
        i += 1
    return out


def decl_name(head):
    """`type name(params)` -> name; `type name[] =` -> name; else None (struct, enum)."""
    if head and head[-1] == ")":
        depth = 0
        for j in range(len(head) - 1, -1, -1):
            depth += {")": 1, "(": -1}.get(head[j], 0)
            if depth == 0:
                return head[j - 1] if j > 0 and re.match(r"[A-Za-z_]\w*$", head[j - 1]) else None
    if head and head[-1] == "=":
        names = [t for t in head if re.match(r"[A-Za-z_]\w*$", t)]
        return names[-1] if names else None
    return None


def matching(toks, i):
    depth = 0
    for j in range(i, len(toks)):
        depth += {"{": 1, "}": -1}.get(toks[j], 0)
        if depth == 0:
            return j
    raise ValueError("unbalanced braces")


class Graph:
    def __init__(self, files):
        self.nodes = [n for f in files for n in nodes_of(f)]
        self.by_file = {(n.path, n.name): n for n in self.nodes}
        self.global_ = {}
        for n in self.nodes:
            if not n.static:
                self.global_.setdefault(n.name, n)

    def resolve(self, path, name):
        return self.by_file.get((path, name)) or self.global_.get(name)

    def reachable(self, roots):
        seen, todo = set(), [self.global_[r] for r in roots]
        while todo:
            n = todo.pop()
            if id(n) in seen:
                continue
            seen.add(id(n))
            yield n
            for r in n.refs:
                m = self.resolve(n.path, r)
                if m is not None and id(m) not in seen:
                    todo.append(m)


def services():
    """EDDY_AWS_X -> (display name, endpoint id, signing name, target prefix)."""
    text = (ROOT / "src" / "aws" / "endpoint.c").read_text()
    rows = re.findall(r'\[(EDDY_AWS_\w+)\]\s*=\s*\{\s*"([^"]*)",\s*"[^"]*",\s*"([^"]*)",\s*'
                      r'"([^"]*)",\s*"([^"]*)"', text)
    assert rows, "no service table in src/aws/endpoint.c"
    return {r[0]: r[1:] for r in rows}


def operation_names(display, endpoint_id, target_prefix):
    """The operations of the botocore model with this target prefix."""
    import botocore.session

    session = botocore.session.get_session()
    available = set(session.get_available_services())
    for name in (display.lower(), endpoint_id):
        if name in available:
            model = session.get_service_model(name)
            if model.metadata.get("targetPrefix") == target_prefix:
                return set(model.operation_names)
    raise AssertionError(f"no botocore model with target prefix {target_prefix} "
                         f"(tried {display.lower()}, {endpoint_id})")


def client_operations(graph):
    """For each service-client function: the IAM prefix and the operations it names."""
    table = services()
    ops = {}
    for path in sorted((ROOT / "src" / "svc").glob("*.c")):
        found = re.findall(r"eddy_aws_client_init\([^;]*?\b(EDDY_AWS_\w+)", path.read_text(), re.S)
        if not found:
            continue
        display, endpoint_id, signing, target = table[found[0]]
        known = operation_names(display, endpoint_id, target)
        for n in graph.nodes:
            if n.path == path:
                named = n.literals & known
                if named:
                    ops[id(n)] = (signing, named)
    assert ops, "no operation found in src/svc"
    return ops


def commands():
    text = (ROOT / "src" / "cli" / "commands.c").read_text()
    found = dict(re.findall(r'\{\s*"([a-z-]+)"\s*,\s*(eddy_cmd_\w+)\s*\}', text))
    assert SERVICE_COMMANDS <= set(found), found
    return found


def derived_actions(graph, ops, roots):
    actions, operations, kinds = set(), set(), set()
    svc = ROOT / "src" / "svc"
    for n in graph.reachable(roots):
        if n.path.parent != svc:  # the callers choose the kinds; the client handles all
            kinds |= n.refs & set(TXN_KIND_ACTIONS)
        if id(n) in ops:
            prefix, named = ops[id(n)]
            operations |= {(prefix, op) for op in named}
    for prefix, op in operations:
        if op in TXN_OPERATIONS:
            assert kinds, f"{op} is reachable but no transaction item kind is"
            actions |= {f"{prefix}:{TXN_KIND_ACTIONS[k]}" for k in kinds}
        else:
            actions.add(f"{prefix}:{BATCH_ACTIONS.get(op, op)}")
    return actions, sorted(f"{p}:{o}" for p, o in operations)


def granted(policy_documents):
    out = set()
    for doc in policy_documents:
        for st in doc["Statement"]:
            assert st["Effect"] == "Allow", st
            acts = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
            out |= set(acts)
    return out


def compare(what, derived, template, operations):
    missing, unused = derived - template, template - derived
    assert not missing and not unused, (
        f"{what}: the code can call {operations};\n"
        f"  missing from the template: {sorted(missing) or 'none'}\n"
        f"  granted but never called: {sorted(unused) or 'none'}")


TEMPLATE, _ = decode_str((ROOT / "deploy" / "cloudformation.yaml").read_text())
RES = TEMPLATE["Resources"]
GRAPH = Graph(sorted((ROOT / "src").rglob("*.c")))
OPS = client_operations(GRAPH)
COMMANDS = commands()


def test_the_graph_sees_the_clients():
    """The derivation finds what is known to be called (or it proves nothing)."""
    worker, operations = derived_actions(GRAPH, OPS, ["eddy_cmd_worker"])
    for action in ("sqs:ReceiveMessage", "sqs:DeleteMessage", "dynamodb:PutItem",
                   "events:PutEvents"):
        assert action in worker, (action, operations)


def test_task_role_matches_the_code():
    roots = [COMMANDS[c] for c in sorted(SERVICE_COMMANDS)]
    derived, operations = derived_actions(GRAPH, OPS, roots)
    docs = [p["PolicyDocument"] for p in RES["TaskRole"]["Properties"]["Policies"]]
    compare("task role (eddy " + ", ".join(sorted(SERVICE_COMMANDS)) + ")", derived,
            granted(docs), operations)


def test_operator_policy_matches_the_code():
    names = sorted(set(COMMANDS) - SERVICE_COMMANDS)
    derived, operations = derived_actions(GRAPH, OPS, [COMMANDS[c] for c in names])
    policy = RES["OperatorPolicy"]
    assert policy["Type"] == "AWS::IAM::ManagedPolicy", policy["Type"]
    compare("operator policy (eddy " + ", ".join(names) + ")", derived,
            granted([policy["Properties"]["PolicyDocument"]]), operations)


PermissionsTest = awsenv.test_case("PermissionsTest", [
    test_the_graph_sees_the_clients,
    test_task_role_matches_the_code,
    test_operator_policy_matches_the_code,
])


if __name__ == "__main__":
    awsenv.main()
