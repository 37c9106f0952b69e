"""What deploy/cloudformation.yaml promises, checked on the template itself.

The parts moto cannot create (queue policy, IAM, ECS, autoscaling) are checked
here against issue-level requirements: least privilege, the health check, the
stop timeout, the backlog-per-task scaling metric, the DeployService condition.
"""

import os
import re
import sys
from pathlib import Path

from cfnlint.decode import decode_str

ROOT = Path(os.environ.get("EDDY_SOURCE_ROOT", Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(ROOT / "tests" / "integration"))
import awsenv  # noqa: E402

TEMPLATE, PROBLEMS = decode_str((ROOT / "deploy" / "cloudformation.yaml").read_text())
RES = TEMPLATE["Resources"] if TEMPLATE else {}
DATA = {"Table", "DeadLetterQueue", "Queue", "EventBus", "InboundRule", "QueuePolicy"}


def getatt(name, attr):
    return {"Fn::GetAtt": [name, attr]}


def test_parses():
    assert not PROBLEMS, PROBLEMS


def test_data_resources_unconditional_service_conditional():
    for name, res in RES.items():
        if name in DATA:
            assert "Condition" not in res, name
        else:
            assert res.get("Condition") == "CreateService", name
    assert DATA <= set(RES)


def test_table_ttl_recovery_encryption():
    props = RES["Table"]["Properties"]
    assert props["TimeToLiveSpecification"] == {"AttributeName": "_ttl", "Enabled": True}
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["SSESpecification"] == {"SSEEnabled": True}
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert RES["Table"]["DeletionPolicy"] == "Retain"


def test_dlq_keeps_messages_longer_than_the_queue():
    # a redriven message keeps its first enqueue time: the DLQ must outlive it
    inbound = RES["Queue"]["Properties"]["MessageRetentionPeriod"]
    dlq = RES["DeadLetterQueue"]["Properties"]["MessageRetentionPeriod"]
    assert int(dlq) == 1209600 and int(inbound) <= int(dlq) // 2, (inbound, dlq)


def test_queue_policy_only_rule_sends():
    statements = RES["QueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert len(statements) == 1
    st = statements[0]
    assert st["Effect"] == "Allow" and st["Action"] == "sqs:SendMessage"
    assert st["Principal"] == {"Service": "events.amazonaws.com"}
    assert st["Resource"] == getatt("Queue", "Arn")
    assert st["Condition"] == {"ArnEquals": {"aws:SourceArn": getatt("InboundRule", "Arn")}}


def test_task_role_least_privilege():
    policies = RES["TaskRole"]["Properties"]["Policies"]
    assert len(policies) == 1
    grants = {}
    for st in policies[0]["PolicyDocument"]["Statement"]:
        assert st["Effect"] == "Allow"
        actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
        resources = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
        for action in actions:
            assert "*" not in action, action
            for resource in resources:
                grants.setdefault(action, []).append(resource)
    queue, table = [getatt("Queue", "Arn")], [getatt("Table", "Arn")]
    expected = {a: queue for a in ("sqs:ReceiveMessage", "sqs:DeleteMessage",
                                   "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes")}
    expected["sqs:SendMessage"] = [getatt("DeadLetterQueue", "Arn")]  # poison only
    for a in ("BatchGetItem", "Query", "PutItem", "DeleteItem", "BatchWriteItem", "GetItem"):
        expected["dynamodb:" + a] = table
    expected["events:PutEvents"] = [getatt("EventBus", "Arn")]
    assert grants == expected, grants
    # GetItem is the circuit breaker's probe: its one key only
    (probe,) = [st for st in policies[0]["PolicyDocument"]["Statement"]
                if "dynamodb:GetItem" in (st["Action"] if isinstance(st["Action"], list)
                                          else [st["Action"]])]
    assert probe["Action"] == "dynamodb:GetItem", probe
    key = re.search(r'#define EDDY_DDB_PROBE_KEY "([^"]+)"',
                    (ROOT / "src" / "svc" / "dynamodb.h").read_text()).group(1)
    assert probe["Condition"] == {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": [key]}}


def test_operator_policy_on_the_table():
    policy = RES["OperatorPolicy"]
    assert policy["Type"] == "AWS::IAM::ManagedPolicy"
    for st in policy["Properties"]["PolicyDocument"]["Statement"]:
        assert st["Effect"] == "Allow" and st["Resource"] == getatt("Table", "Arn"), st
        actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
        assert all(a.startswith("dynamodb:") and "*" not in a for a in actions), actions
    assert TEMPLATE["Outputs"]["OperatorPolicyArn"]["Value"] == {"Ref": "OperatorPolicy"}


def test_task_definition():
    props = RES["TaskDefinition"]["Properties"]
    assert props["RequiresCompatibilities"] == ["FARGATE"]
    (container,) = props["ContainerDefinitions"]
    assert container["StopTimeout"] == 30
    assert container["HealthCheck"]["Command"] == ["CMD", "/usr/local/bin/eddy", "healthcheck"]
    assert container["LogConfiguration"]["LogDriver"] == "awslogs"
    names = {e["Name"] for e in container["Environment"]}
    assert names == {"EDDY_QUEUE_URL", "EDDY_DLQ_URL", "EDDY_TABLE", "EDDY_EVENT_BUS",
                     "EDDY_MACHINE", "AWS_REGION", "EDDY_METRICS_SERVICE"}, names


def test_visibility_exceeds_drain():
    default = TEMPLATE["Parameters"]["QueueVisibilityTimeout"]
    assert default["Default"] >= 60 and default["MinValue"] > 25
    redrive = RES["Queue"]["Properties"]["RedrivePolicy"]
    assert redrive["maxReceiveCount"] == 5
    assert redrive["deadLetterTargetArn"] == getatt("DeadLetterQueue", "Arn")


def test_scaling_on_backlog_per_task():
    config = RES["BacklogScalingPolicy"]["Properties"]["TargetTrackingScalingPolicyConfiguration"]
    metrics = {m["Id"]: m for m in config["CustomizedMetricSpecification"]["Metrics"]}
    visible = metrics["visible"]["MetricStat"]["Metric"]
    assert visible["MetricName"] == "ApproximateNumberOfMessagesVisible"
    tasks = metrics["tasks"]["MetricStat"]["Metric"]
    assert tasks["MetricName"] == "RunningTaskCount"
    returned = [m for m in metrics.values() if m.get("ReturnData")]
    assert len(returned) == 1 and returned[0]["Expression"] == "visible / tasks"


def emf_metric_names():
    """The metric names the code writes in its EMF lines (the X-maps of the metrics header)."""
    names = set()
    for header in (ROOT / "src").rglob("*.h"):
        text = header.read_text()
        for kind, suffixes in (("COUNTER", ("",)), ("LATENCY", ("_p50", "_p99"))):
            m = re.search(rf"#define EDDY_METRIC_{kind}_MAP\(X\)((?:.*\\\n)*.*)", text)
            if m:
                for name in re.findall(r"X\((\w+)\)", m.group(1)):
                    names |= {name + s for s in suffixes}
    assert names, "no EDDY_METRIC_*_MAP found under src/"
    return names


def alarm_metrics(props):
    if "MetricName" in props:
        return [props]
    return [q["MetricStat"]["Metric"] for q in props["Metrics"] if "MetricStat" in q]


def test_alarms():
    alarms = {n: r for n, r in RES.items() if r["Type"] == "AWS::CloudWatch::Alarm"}
    watched = {}
    for name, res in alarms.items():
        assert res.get("Condition") == "CreateService", name
        props = res["Properties"]
        topic = {"Fn::If": ["HasAlarmTopic", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]}
        assert props["AlarmActions"] == topic and props["OKActions"] == topic, name
        for metric in alarm_metrics(props):
            watched.setdefault((metric["Namespace"], metric["MetricName"]), []).append(
                (name, metric["Dimensions"]))
    assert TEMPLATE["Parameters"]["AlarmTopicArn"]["Default"] == ""
    queue = [{"Name": "QueueName", "Value": getatt("Queue", "QueueName")}]
    dlq = [{"Name": "QueueName", "Value": getatt("DeadLetterQueue", "QueueName")}]
    assert [d for _, d in watched[("AWS/SQS", "ApproximateNumberOfMessagesVisible")]] == [dlq]
    assert [d for _, d in watched[("AWS/SQS", "ApproximateAgeOfOldestMessage")]] == [queue]
    assert ("eddy", "outbox_lag_p99") in watched, sorted(watched)
    assert ("eddy", "publish_dead") in watched, sorted(watched)
    assert ("ECS/ContainerInsights", "RunningTaskCount") in watched, sorted(watched)
    # Every eddy metric an alarm watches is one the code writes, with the Service
    # dimension the task gives its metrics (this stack's, not every eddy's).
    env = RES["TaskDefinition"]["Properties"]["ContainerDefinitions"][0]["Environment"]
    service = next(e["Value"] for e in env if e["Name"] == "EDDY_METRICS_SERVICE")
    assert service == {"Ref": "AWS::StackName"}, service
    emitted = emf_metric_names()
    for (ns, metric), uses in watched.items():
        if ns == "eddy":
            assert metric in emitted, f"{metric} is no metric of the code: {sorted(emitted)}"
            assert all(d == [{"Name": "Service", "Value": service}] for _, d in uses), uses


def test_outputs_cover_names_and_urls():
    outputs = set(TEMPLATE["Outputs"])
    assert {"TableName", "QueueUrl", "DeadLetterQueueUrl", "EventBusName", "EventBusArn",
            "InboundRuleArn", "ClusterName", "ServiceName", "LogGroupName"} <= outputs


TemplateTest = awsenv.test_case("TemplateTest", [
    test_parses,
    test_data_resources_unconditional_service_conditional,
    test_table_ttl_recovery_encryption,
    test_dlq_keeps_messages_longer_than_the_queue,
    test_queue_policy_only_rule_sends,
    test_task_role_least_privilege,
    test_operator_policy_on_the_table,
    test_task_definition,
    test_visibility_exceeds_drain,
    test_scaling_on_backlog_per_task,
    test_alarms,
    test_outputs_cover_names_and_urls,
])


if __name__ == "__main__":
    awsenv.main()
