"""The template's data resources, created through CloudFormation on moto.

DeployService=false: the table (keys, billing), the queue and its DLQ, the bus and the rule
(moto's CloudFormation does not create AWS::SQS::QueuePolicy; test_template.py
checks that part). Then events are put on the bus to show that the rule sends the
inbound detail-types, and only those, to the queue.
"""

import json
import os
import sys
from pathlib import Path

ROOT = Path(os.environ.get("EDDY_SOURCE_ROOT", Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(ROOT / "tests" / "integration"))
import awsenv  # noqa: E402

ENV = awsenv.Env.current()
STACK = awsenv.unique_name("eddy")
OUT = {}


def create_stack():
    OUT.update(ENV.deploy_stack(ROOT / "deploy" / "cloudformation.yaml", STACK, {
        "DeployService": "false",
        "Image": "eddy:test",
        "Subnets": "subnet-0123456789abcdef0",
        "SecurityGroups": "sg-0123456789abcdef0",
    }))


def test_create_stack():
    for key in ("TableName", "QueueUrl", "DeadLetterQueueUrl", "EventBusName",
                "InboundRuleArn"):
        assert OUT.get(key), (key, OUT)
    assert "ClusterName" not in OUT, "DeployService=false created the service"


def test_table():
    ddb = ENV.dynamodb()
    table = ddb.describe_table(TableName=OUT["TableName"])["Table"]
    keys = {k["AttributeName"]: k["KeyType"] for k in table["KeySchema"]}
    assert keys == {"_pk": "HASH", "_sk": "RANGE"}, keys
    types = {a["AttributeName"]: a["AttributeType"] for a in table["AttributeDefinitions"]}
    assert types == {"_pk": "S", "_sk": "S"}, types
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    # moto's CloudFormation ignores TimeToLiveSpecification, point-in-time
    # recovery and encryption; test_template.py checks those on the template.
    ddb.put_item(TableName=OUT["TableName"],
                 Item={"_pk": {"S": "slotmachine/1"}, "_sk": {"S": "STATE"}})


def test_queues_and_redrive():
    sqs = ENV.sqs()
    attrs = sqs.get_queue_attributes(QueueUrl=OUT["QueueUrl"],
                                     AttributeNames=["All"])["Attributes"]
    dlq = sqs.get_queue_attributes(QueueUrl=OUT["DeadLetterQueueUrl"],
                                   AttributeNames=["QueueArn"])["Attributes"]
    redrive = json.loads(attrs["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"] == dlq["QueueArn"], redrive
    assert int(redrive["maxReceiveCount"]) == 5, redrive
    assert int(attrs["VisibilityTimeout"]) == 60, attrs
    assert int(attrs["ReceiveMessageWaitTimeSeconds"]) == 20, attrs


def test_bus_rule_target():
    events = ENV.events()
    bus = events.describe_event_bus(Name=OUT["EventBusName"])
    assert bus["Arn"] == OUT["EventBusArn"]
    rules = events.list_rules(EventBusName=OUT["EventBusName"])["Rules"]
    (rule,) = [r for r in rules if r["Arn"] == OUT["InboundRuleArn"]]
    pattern = json.loads(rule["EventPattern"])
    assert sorted(pattern["detail-type"]) == ["InsertCoin", "PullHandle"], pattern
    targets = events.list_targets_by_rule(Rule=rule["Name"],
                                          EventBusName=OUT["EventBusName"])["Targets"]
    assert [t["Arn"] for t in targets] == [OUT["QueueArn"]], targets


def test_inbound_types_reach_queue():
    entries = [{"EventBusName": OUT["EventBusName"], "Source": "test", "DetailType": t,
                "Detail": json.dumps({"id": "m1", "n": i})}
               for i, t in enumerate(["InsertCoin", "GameResult", "PullHandle", "Payout"])]
    result = ENV.events().put_events(Entries=entries)
    assert result["FailedEntryCount"] == 0, result
    bodies = awsenv.receive_all(ENV, OUT["QueueUrl"], 2, timeout_s=10)
    kinds = sorted(json.loads(b)["detail-type"] for b in bodies)
    assert kinds == ["InsertCoin", "PullHandle"], kinds
    extra = ENV.sqs().receive_message(QueueUrl=OUT["QueueUrl"], WaitTimeSeconds=1)
    assert not extra.get("Messages"), extra


StackTest = awsenv.test_case("StackTest", setup=create_stack, tests=[
    test_create_stack,
    test_table,
    test_queues_and_redrive,
    test_bus_rule_target,
    test_inbound_types_reach_queue,
])


if __name__ == "__main__":
    awsenv.main()
