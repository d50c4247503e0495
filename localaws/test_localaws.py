"""Smoke tests of the local AWS and the Slack stand-in, over real HTTP.

Run with `localaws/run.sh test` (it starts the servers and sets AWS_ENDPOINT_URL and
VIGIL_SLACK_URL). Each test resets the servers first.
"""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

AWS = os.environ.get("AWS_ENDPOINT_URL", "")
SLACK = os.environ.get("VIGIL_SLACK_URL", "")
if not (AWS and SLACK):
    pytest.exit("AWS_ENDPOINT_URL and VIGIL_SLACK_URL are unset: run `localaws/run.sh test`", 2)

NO_RETRY = Config(retries={"mode": "standard", "total_max_attempts": 1})


def http(method: str, url: str, body=None, headers=None, form: bool = False):
    """(status, headers, parsed JSON or text) for one request; HTTP errors are answers too."""
    if body is not None and not isinstance(body, (bytes, str)):
        body = json.dumps(body)
    data = body.encode() if isinstance(body, str) else body
    hdrs = {"Content-Type": "application/x-www-form-urlencoded" if form else "application/json"}
    req = urllib.request.Request(url, data=data, method=method, headers={**hdrs, **(headers or {})})
    try:
        resp = urllib.request.urlopen(req, timeout=10)
    except urllib.error.HTTPError as err:
        resp = err
    text = resp.read().decode()
    try:
        return resp.status, resp.headers, json.loads(text)
    except ValueError:
        return resp.status, resp.headers, text


def client(service: str, **kw):
    return boto3.client(service, endpoint_url=AWS, region_name=kw.pop("region", "us-east-1"),
                        aws_access_key_id="testing", aws_secret_access_key="testing", **kw)


def record(i: int, minutes_ago: float, source="iam.amazonaws.com", name="PutRolePolicy",
           region="us-east-1", read_only=False, user="alice"):
    when = datetime.now(timezone.utc) - timedelta(minutes=minutes_ago)
    return {
        "eventVersion": "1.09",
        "eventID": f"00000000-0000-0000-0000-{i:012d}",
        "eventTime": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": source,
        "eventName": name,
        "awsRegion": region,
        "recipientAccountId": "123456789012",
        "readOnly": read_only,
        "sourceIPAddress": "198.51.100.7",
        "userAgent": "aws-cli/2.15.0",
        "userIdentity": {"type": "IAMUser", "userName": user, "accessKeyId": f"AKIA{i:016d}",
                         "arn": f"arn:aws:iam::123456789012:user/{user}"},
        "requestParameters": {"roleName": f"role-{i % 2}", "policyName": "inline"},
    }


@pytest.fixture(autouse=True)
def reset():
    assert http("POST", AWS + "/_vigil/reset")[0] == 200
    assert http("POST", SLACK + "/_stand-in/reset")[0] == 200


# --- CloudTrail ---------------------------------------------------------------------------------


def test_lookup_events_filters_and_paginates():
    seeded = [record(i, minutes_ago=i) for i in range(1, 8)]  # 7 IAM changes, 1..7 min ago
    seeded += [record(20, 3.5, source="bedrock.amazonaws.com", name="UpdateGuardrail")]
    seeded += [record(21, 2, region="eu-west-1")]  # another Region: never returned here
    seeded += [record(22, 90)]  # outside the window below
    assert http("POST", AWS + "/_vigil/cloudtrail/events", {"Records": seeded})[2] == {"stored": 10}
    http("POST", AWS + "/_vigil/faults", {"cloudtrail_rate": 50})  # this test is not about pacing

    ct = client("cloudtrail", config=NO_RETRY)
    now = datetime.now(timezone.utc)
    query = dict(
        LookupAttributes=[{"AttributeKey": "EventSource", "AttributeValue": "iam.amazonaws.com"}],
        StartTime=now - timedelta(minutes=60), EndTime=now + timedelta(minutes=1), MaxResults=3,
    )
    pages, token = [], None
    while True:
        out = ct.lookup_events(**query, **({"NextToken": token} if token else {}))
        pages.append(out["Events"])
        token = out.get("NextToken")
        if not token:
            break
    assert [len(p) for p in pages] == [3, 3, 1]
    events = [e for p in pages for e in p]
    assert [e["EventId"][-2:] for e in events] == ["01", "02", "03", "04", "05", "06", "07"]
    times = [e["EventTime"] for e in events]
    assert times == sorted(times, reverse=True)  # newest first
    first = events[0]
    assert first["EventName"] == "PutRolePolicy" and first["ReadOnly"] == "false"
    assert first["Username"] == "alice" and first["AccessKeyId"].startswith("AKIA")
    assert {"ResourceType": "AWS::IAM::Role", "ResourceName": "role-1"} in first["Resources"]
    assert json.loads(first["CloudTrailEvent"]) == seeded[0]

    by_resource = ct.lookup_events(
        LookupAttributes=[{"AttributeKey": "ResourceName", "AttributeValue": "role-0"}],
        StartTime=now - timedelta(minutes=60))
    assert sorted(e["EventId"][-2:] for e in by_resource["Events"]) == ["02", "04", "06", "20"]
    eu = client("cloudtrail", region="eu-west-1", config=NO_RETRY).lookup_events()
    assert [e["EventId"][-2:] for e in eu["Events"]] == ["21"]

    def error(**kw):
        with pytest.raises(ClientError) as info:
            ct.lookup_events(**kw)
        return info.value.response["Error"]["Code"], info.value.response["ResponseMetadata"]["HTTPStatusCode"]

    two = [{"AttributeKey": "EventName", "AttributeValue": "A"},
           {"AttributeKey": "EventSource", "AttributeValue": "B"}]
    assert error(LookupAttributes=two) == ("InvalidLookupAttributesException", 400)
    assert error(MaxResults=51) == ("InvalidMaxResultsException", 400)
    assert error(StartTime=now, EndTime=now - timedelta(hours=1)) == ("InvalidTimeRangeException", 400)
    assert error(NextToken="bogus") == ("InvalidNextTokenException", 400)


def test_lookup_events_with_the_rust_sdk_target():
    # aws-sdk-cloudtrail sends the short X-Amz-Target; boto3 the long one. Both are LookupEvents.
    http("POST", AWS + "/_vigil/cloudtrail/events", [record(1, 1)])
    status, headers, body = http("POST", AWS + "/", {"MaxResults": 5}, {
        "Content-Type": "application/x-amz-json-1.1",
        "X-Amz-Target": "CloudTrail_20131101.LookupEvents",
        "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/cloudtrail/aws4_request, "
                         "SignedHeaders=host, Signature=0",
    })
    assert status == 200 and [e["EventId"][-2:] for e in body["Events"]] == ["01"]
    assert isinstance(body["Events"][0]["EventTime"], float)


def test_third_lookup_within_a_second_is_throttled():
    ct = client("cloudtrail", config=NO_RETRY)
    ct.lookup_events()
    ct.lookup_events()
    with pytest.raises(ClientError) as info:
        ct.lookup_events()
    assert info.value.response["Error"] == {"Code": "ThrottlingException", "Message": "Rate exceeded"}
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    time.sleep(0.55)  # refill is 2 per second
    ct.lookup_events()

    log = http("GET", AWS + "/_vigil/requests?service=cloudtrail&operation=LookupEvents")[2]["requests"]
    assert [r["status"] for r in log] == [200, 200, 400, 200]
    assert [r["handled_by"] for r in log] == ["vigil", "vigil", "throttle", "vigil"]
    assert log[3]["mono_ms"] - log[0]["mono_ms"] >= 500


def test_rate_limit_is_shared_by_every_caller():
    time.sleep(1.0)  # a full bucket
    callers = [client("cloudtrail", config=NO_RETRY) for _ in range(3)]
    start = threading.Barrier(3)

    def call(ct):
        start.wait()
        try:
            ct.lookup_events()
            return 200
        except ClientError as err:
            return err.response["ResponseMetadata"]["HTTPStatusCode"]

    with ThreadPoolExecutor(3) as pool:
        assert sorted(pool.map(call, callers)) == [200, 200, 400]


def test_forced_faults_then_normal():
    faults = [{"service": "cloudtrail", "mode": "throttle", "count": 1},
              {"service": "cloudtrail", "operation": "LookupEvents", "mode": "error500"}]
    assert len(http("POST", AWS + "/_vigil/faults", faults)[2]["faults"]) == 2
    ct = client("cloudtrail", config=NO_RETRY)
    codes = []
    for _ in range(3):
        try:
            ct.lookup_events()
            codes.append(200)
        except ClientError as err:
            codes.append(err.response["ResponseMetadata"]["HTTPStatusCode"])
    assert codes == [400, 500, 200]
    http("POST", AWS + "/_vigil/faults", {"service": "cloudtrail", "mode": "malformed"})
    assert "Events" not in ct.lookup_events()  # botocore shrugs off the cut-off JSON; Rust does not
    last = http("GET", AWS + "/_vigil/requests?operation=LookupEvents")[2]["requests"][-1]
    assert (last["status"], last["handled_by"]) == (200, "fault:malformed")
    assert http("GET", AWS + "/_vigil/faults")[2]["faults"] == []


def test_hang_answers_504_without_moto_and_clear_drops_queued_faults():
    sns = client("sns", config=NO_RETRY)
    http("POST", AWS + "/_vigil/faults", {"service": "sns", "mode": "hang", "delay": 0.2, "count": 5})
    try:
        sns.create_topic(Name="never-made")
        raise AssertionError("a hung request is not answered normally")
    except ClientError as err:
        assert err.response["ResponseMetadata"]["HTTPStatusCode"] == 504
    assert http("GET", AWS + "/_vigil/faults")[2]["faults"][0]["count"] == 4
    http("POST", AWS + "/_vigil/faults", {"clear": True})
    assert http("GET", AWS + "/_vigil/faults")[2]["faults"] == []
    assert sns.list_topics()["Topics"] == [], "the hung CreateTopic never reached moto"


# --- Bedrock guardrails -------------------------------------------------------------------------


def test_guardrail_round_trip():
    br = client("bedrock", config=NO_RETRY)
    created = br.create_guardrail(
        name="prod-guard", description="prod", blockedInputMessaging="Blocked.",
        blockedOutputsMessaging="Blocked.",
        contentPolicyConfig={"filtersConfig": [
            {"type": "PROMPT_ATTACK", "inputStrength": "HIGH", "outputStrength": "NONE"},
            {"type": "HATE", "inputStrength": "MEDIUM", "outputStrength": "MEDIUM"}]},
    )
    gid, arn = created["guardrailId"], created["guardrailArn"]
    assert arn == f"arn:aws:bedrock:us-east-1:123456789012:guardrail/{gid}"
    assert created["version"] == "DRAFT" and created["ResponseMetadata"]["HTTPStatusCode"] == 202

    draft = br.get_guardrail(guardrailIdentifier=gid)
    assert draft["version"] == "DRAFT" and draft["status"] == "READY"
    attack = draft["contentPolicy"]["filters"][0]
    assert (attack["type"], attack["inputStrength"], attack["outputStrength"]) == ("PROMPT_ATTACK", "HIGH", "NONE")

    assert br.create_guardrail_version(guardrailIdentifier=arn)["version"] == "1"
    br.update_guardrail(guardrailIdentifier=gid, name="prod-guard", blockedInputMessaging="B.",
                        blockedOutputsMessaging="B.", contentPolicyConfig={"filtersConfig": [
                            {"type": "PROMPT_ATTACK", "inputStrength": "LOW", "outputStrength": "NONE"}]})
    v1 = br.get_guardrail(guardrailIdentifier=arn, guardrailVersion="1")
    assert v1["version"] == "1" and v1["contentPolicy"]["filters"][0]["inputStrength"] == "HIGH"
    now = br.get_guardrail(guardrailIdentifier=arn)
    assert now["contentPolicy"]["filters"][0]["inputStrength"] == "LOW"
    assert now["updatedAt"] >= now["createdAt"]

    assert [g["id"] for g in br.list_guardrails()["guardrails"]] == [gid]
    assert [g["version"] for g in br.list_guardrails(guardrailIdentifier=gid)["guardrails"]] == ["DRAFT", "1"]

    with pytest.raises(ClientError) as info:
        br.get_guardrail(guardrailIdentifier=gid, guardrailVersion="7")
    assert info.value.response["Error"]["Code"] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as info:
        br.create_guardrail(name="bad", blockedInputMessaging="x", blockedOutputsMessaging="x",
                            contentPolicyConfig={"filtersConfig": [
                                {"type": "PROMPT_ATTACK", "inputStrength": "HIGH", "outputStrength": "HIGH"}]})
    assert info.value.response["Error"]["Code"] == "ValidationException"
    br.delete_guardrail(guardrailIdentifier=gid)
    assert br.list_guardrails()["guardrails"] == []
    # moto still answers the rest of Bedrock.
    assert br.get_model_invocation_logging_configuration().get("loggingConfig") == {}


# --- moto services vigil uses -------------------------------------------------------------------


def test_sns_publish_reads_back():
    sns = client("sns")
    topic = sns.create_topic(Name="vigil-alerts")["TopicArn"]
    sent = sns.publish(TopicArn=topic, Subject="[HIGH] Bedrock throttles", Message='{"kind":"alarm"}',
                       MessageAttributes={"severity": {"DataType": "String", "StringValue": "high"}})
    data = http("GET", AWS + "/moto-api/data.json")[2]
    (stored,) = [t for t in data["sns"]["Topic"] if t["arn"] == topic]
    msg_id, message, subject, attrs, _group = stored["sent_notifications"][0]
    assert msg_id == sent["MessageId"] and json.loads(message) == {"kind": "alarm"}
    assert subject == "[HIGH] Bedrock throttles"
    assert attrs["severity"] == {"Type": "String", "Value": "high"}


def test_secrets_and_ssm_secure_string():
    sm, ssm = client("secretsmanager"), client("ssm")
    sm.create_secret(Name="vigil/slack", SecretString='{"webhook":"https://hooks.example/T/B/X"}')
    assert json.loads(sm.get_secret_value(SecretId="vigil/slack")["SecretString"])["webhook"].endswith("/X")
    ssm.put_parameter(Name="/vigil/bot-token", Value="xoxb-123", Type="SecureString")
    assert ssm.get_parameter(Name="/vigil/bot-token")["Parameter"]["Value"] != "xoxb-123"
    assert ssm.get_parameter(Name="/vigil/bot-token", WithDecryption=True)["Parameter"]["Value"] == "xoxb-123"


def dynamodb_table(name: str):
    ddb = client("dynamodb", config=Config(max_pool_connections=16, retries={"total_max_attempts": 1}))
    ddb.create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("pk", "sk", "cid")],
        GlobalSecondaryIndexes=[{"IndexName": "by-correlation", "Projection": {"ProjectionType": "ALL"},
                                 "KeySchema": [{"AttributeName": "cid", "KeyType": "HASH"},
                                               {"AttributeName": "sk", "KeyType": "RANGE"}]}])
    return ddb


def test_dynamodb_conditional_writes_are_atomic_under_concurrency():
    # Optimistic increments: read, then write conditional on the value read. moto alone checks
    # the condition and writes without a lock, so two of them could both succeed on one value
    # (observed: 1,200 successful writes, counter 1,197). The server serializes DynamoDB. A race
    # needs luck: without the lock this short run fails about one time in six (runs of 1,200
    # increments, ~15 s, fail nearly always); with it, it never fails.
    ddb = dynamodb_table("atomic")
    key = {"pk": {"S": "ctr"}, "sk": {"S": "ctr"}}
    ddb.put_item(TableName="atomic", Item={**key, "v": {"N": "0"}})
    wins, barrier = [0] * 8, threading.Barrier(8)

    def increment(i: int) -> None:
        barrier.wait()
        for _ in range(10):
            while True:
                v = int(ddb.get_item(TableName="atomic", Key=key, ConsistentRead=True)["Item"]["v"]["N"])
                try:
                    ddb.put_item(TableName="atomic", Item={**key, "v": {"N": str(v + 1)}},
                                 ConditionExpression="v = :old", ExpressionAttributeValues={":old": {"N": str(v)}})
                    wins[i] += 1
                    break
                except ClientError as err:
                    assert err.response["Error"]["Code"] == "ConditionalCheckFailedException"

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(increment, range(8)))
    final = int(ddb.get_item(TableName="atomic", Key=key, ConsistentRead=True)["Item"]["v"]["N"])
    assert sum(wins) == 80 and final == 80


def test_dynamodb_features_the_state_store_uses():
    ddb = dynamodb_table("features")
    # A failed condition returns the item that failed it.
    ddb.put_item(TableName="features", Item={"pk": {"S": "event#1"}, "sk": {"S": "claim"}, "status": {"S": "done"}})
    with pytest.raises(ClientError) as info:
        ddb.put_item(TableName="features", Item={"pk": {"S": "event#1"}, "sk": {"S": "claim"}},
                     ConditionExpression="attribute_not_exists(pk)", ReturnValuesOnConditionCheckFailure="ALL_OLD")
    assert info.value.response["Item"]["status"] == {"S": "done"}
    # The by-correlation index pages in sort-key order; rows without cid are not in it.
    for i in range(5):
        item = {"pk": {"S": f"ledger#h{i % 2}"}, "sk": {"S": f"2026-11-20T09:0{i}"}}
        if i != 4:
            item["cid"] = {"S": "a" if i % 2 else "b"}
        ddb.put_item(TableName="features", Item=item)
    page = ddb.query(TableName="features", IndexName="by-correlation", KeyConditionExpression="cid = :c",
                     ExpressionAttributeValues={":c": {"S": "b"}}, Limit=1)
    rest = ddb.query(TableName="features", IndexName="by-correlation", KeyConditionExpression="cid = :c",
                     ExpressionAttributeValues={":c": {"S": "b"}}, ExclusiveStartKey=page["LastEvaluatedKey"])
    assert [r["sk"]["S"] for r in page["Items"] + rest["Items"]] == ["2026-11-20T09:00", "2026-11-20T09:02"]
    # A take: DeleteItem answers with what it deleted, once.
    taken = ddb.delete_item(TableName="features", Key={"pk": {"S": "event#1"}, "sk": {"S": "claim"}},
                            ReturnValues="ALL_OLD")
    assert taken["Attributes"]["status"] == {"S": "done"}
    assert "Attributes" not in ddb.delete_item(TableName="features", Key={"pk": {"S": "event#1"}, "sk": {"S": "claim"}},
                                               ReturnValues="ALL_OLD")


def test_reset_wipes_state_and_log():
    client("sns").create_topic(Name="gone")
    http("POST", AWS + "/_vigil/cloudtrail/events", record(1, 1))
    http("POST", AWS + "/_vigil/reset")
    assert client("sns").list_topics()["Topics"] == []
    assert client("cloudtrail").lookup_events()["Events"] == []
    log = http("GET", AWS + "/_vigil/requests")[2]["requests"]
    assert [(r["service"], r["operation"]) for r in log] == [("sns", "ListTopics"), ("cloudtrail", "LookupEvents")]


# --- Slack stand-in -----------------------------------------------------------------------------


def test_slack_webhook_script_then_ok():
    script = [{"status": 429, "retry_after": 2}, {"status": 500}, {"status": 400, "body": "invalid_blocks"},
              {"status": 404, "body": "no_service"}, {"status": 410, "body": "channel_is_archived"}]
    assert http("POST", SLACK + "/_stand-in/script", script)[2] == {"ok": True, "queued": 5}
    hook = SLACK + "/services/T000/B000/XXXX"
    status, headers, body = http("POST", hook, {"text": "1"})
    assert (status, headers["Retry-After"], body) == (429, "2", "rate_limited")
    answers = [http("POST", hook, {"text": str(i)})[::2] for i in range(2, 7)]
    assert answers == [(500, "internal_error"), (400, "invalid_blocks"), (404, "no_service"),
                       (410, "channel_is_archived"), (200, "ok")]
    assert http("POST", hook, {"blocks": [{"type": "divider"}] * 51})[::2] == (400, "invalid_blocks")

    log = http("GET", SLACK + "/_stand-in/requests")[2]["requests"]
    assert [(r["json"].get("text"), r["status"]) for r in log[:6]] == [
        ("1", 429), ("2", 500), ("3", 400), ("4", 404), ("5", 410), ("6", 200)]
    assert all(a["mono_ms"] <= b["mono_ms"] for a, b in zip(log, log[1:]))
    assert log[0]["path"] == "/services/T000/B000/XXXX" and log[0]["wall"].endswith("Z")


def test_slack_malformed_answers_are_200_but_not_slacks():
    http("POST", SLACK + "/_stand-in/script", [{"malformed": True}, {"malformed": True}])
    status, _headers, body = http("POST", SLACK + "/services/T000/B000/XXXX", {"text": "1"})
    assert status == 200 and body.startswith("<html>")
    status, _headers, body = http("POST", SLACK + "/api/chat.postMessage", {"channel": "#a", "text": "1"},
                                  headers={"Authorization": "Bearer xoxb-1"})
    assert status == 200 and body == '{"ok": tr'


def test_slack_web_api():
    api = SLACK + "/api/"
    bot = {"Authorization": "Bearer xoxb-test-token"}
    assert http("POST", api + "chat.postMessage", {"channel": "C1", "text": "x"})[2] == {
        "ok": False, "error": "not_authed"}
    assert http("POST", api + "chat.postMessage", {"channel": "C1", "text": "x"},
                {"Authorization": "Bearer nope"})[2] == {"ok": False, "error": "invalid_auth"}

    first = http("POST", api + "chat.postMessage", {"channel": "C1", "text": "Firing"}, bot)[2]
    assert first["ok"] and first["channel"] == "C1" and first["message"]["text"] == "Firing"
    reply = http("POST", api + "chat.postMessage",
                 "channel=C1&text=again&thread_ts=" + first["ts"], bot, form=True)[2]
    assert reply["ok"] and reply["message"]["thread_ts"] == first["ts"] and reply["ts"] > first["ts"]
    updated = http("POST", api + "chat.update", {"channel": "C1", "ts": first["ts"], "text": "Resolved"}, bot)[2]
    assert updated["ok"] and updated["ts"] == first["ts"] and updated["text"] == "Resolved"

    http("POST", SLACK + "/_stand-in/script", [{"status": 429, "retry_after": 1}, {"status": 400, "body": "invalid_blocks"}])
    status, headers, body = http("POST", api + "chat.postMessage", {"channel": "C1", "text": "x"}, bot)
    assert (status, headers["Retry-After"], body) == (429, "1", {"ok": False, "error": "ratelimited"})
    assert http("POST", api + "chat.postMessage", {"channel": "C1", "text": "x"}, bot)[::2] == (
        200, {"ok": False, "error": "invalid_blocks"})


def test_slack_usergroups_users_list():
    api = SLACK + "/api/usergroups.users.list"
    bot = {"Authorization": "Bearer xoxb-test-token"}
    assert http("POST", api, "usergroup=S1", form=True)[2] == {"ok": False, "error": "not_authed"}
    assert http("POST", api, "usergroup=S1", bot, form=True)[2] == {"ok": False, "error": "no_such_subteam"}
    assert http("POST", SLACK + "/_stand-in/usergroups", {"S1": ["U1", "U2"]})[2] == {"ok": True, "groups": 1}
    assert http("POST", api, "usergroup=S1", bot, form=True)[2] == {"ok": True, "users": ["U1", "U2"]}
    assert http("POST", api, {"usergroup": "S1"}, bot)[2] == {"ok": True, "users": ["U1", "U2"]}
    http("POST", SLACK + "/_stand-in/reset")
    assert http("POST", api, "usergroup=S1", bot, form=True)[2] == {"ok": False, "error": "no_such_subteam"}
