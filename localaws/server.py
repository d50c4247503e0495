"""A local AWS for vigil's tests: moto's server app, in-process, plus what moto lacks.

Test infrastructure, not a product. It listens on 127.0.0.1 only and adds, in front of moto:

- CloudTrail LookupEvents (moto answers 500 NotImplemented), over events seeded through the
  control API, with AWS's validation errors, pagination and its rate limit (2 calls per second
  per account and Region, shared by every caller; over it: HTTP 400 ThrottlingException);
- Bedrock guardrails (Create/Get/List/Update/Delete, CreateGuardrailVersion), REST-JSON;
- a control API under /_vigil/ (seed events, inject faults, read the request log, reset).

Everything else goes to moto unchanged. See localaws/README.md.

    python localaws/server.py --port 0 --port-file target/localaws/aws.port
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import re
import secrets
import signal
import string
import sys
import threading
import time
import traceback
import uuid
from collections import deque
from datetime import datetime, timezone
from http import HTTPStatus
from io import BytesIO
from urllib.parse import parse_qs

from moto.core import DEFAULT_ACCOUNT_ID
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server
from werkzeug.test import Client
from werkzeug.wsgi import get_input_stream

# DynamoDB's JSON protocol target prefix: these requests are served one at a time (see
# LocalAws.dynamodb_lock).
DYNAMODB_TARGET = "DynamoDB_20120810."
# boto3 sends the long form, the Rust SDK the short one ("CloudTrail_20131101.LookupEvents").
LOOKUP_EVENTS = re.compile(r"^(com\.amazonaws\.cloudtrail\.v20131101\.)?CloudTrail_20131101\.LookupEvents$")
LOOKUP_KEYS = {
    "EventId",
    "EventName",
    "ReadOnly",
    "Username",
    "ResourceType",
    "ResourceName",
    "EventSource",
    "AccessKeyId",
}
DEFAULT_REGION = "us-east-1"


class ApiError(Exception):
    """An AWS-shaped error: code (the __type / x-amzn-ErrorType), HTTP status, message."""

    def __init__(self, code: str, message: str, status: int = 400):
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def to_epoch(value) -> float:
    """A timestamp as the SDKs send it in JSON (epoch seconds) or as CloudTrail writes it (ISO)."""
    if isinstance(value, (int, float)):
        return float(value)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


# ---------------------------------------------------------------------------------------------
# Rate limit and faults
# ---------------------------------------------------------------------------------------------


class TokenBucket:
    def __init__(self, rate: float, burst: float):
        self.rate, self.burst = rate, burst
        self.tokens, self.stamp = burst, time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class Faults:
    """A queue of injected faults. Each entry: service (signing name), optional operation,
    mode (throttle | error500 | timeout | hang | malformed), count, optional delay (timeout and
    hang, seconds). `timeout` holds the request and then lets moto answer it (the call happened,
    late); `hang` holds it and then answers 504 without moto (the call never happened), so a
    request the client gave up on cannot change state after the test moved on."""

    MODES = {"throttle", "error500", "timeout", "hang", "malformed"}

    def __init__(self):
        self.entries: list[dict] = []

    def add(self, entry: dict) -> None:
        if entry.get("mode") not in self.MODES or not entry.get("service"):
            raise ApiError("BadFault", f"need service and mode in {sorted(self.MODES)}: {entry}")
        self.entries.append({"count": 1, **entry})

    def take(self, service: str, operation: str) -> dict | None:
        for entry in self.entries:
            if entry["service"] == service and entry.get("operation", operation) == operation:
                entry["count"] -= 1
                if entry["count"] <= 0:
                    self.entries.remove(entry)
                return entry
        return None


# ---------------------------------------------------------------------------------------------
# CloudTrail LookupEvents
# ---------------------------------------------------------------------------------------------

# Resources that CloudTrail derives from requestParameters for common events (a small subset).
RESOURCE_PARAMS = {
    "roleName": "AWS::IAM::Role",
    "userName": "AWS::IAM::User",
    "groupName": "AWS::IAM::Group",
    "policyArn": "AWS::IAM::Policy",
    "policyName": "AWS::IAM::Policy",
    "functionName": "AWS::Lambda::Function",
    "bucketName": "AWS::S3::Bucket",
    "keyId": "AWS::KMS::Key",
    "guardrailIdentifier": "AWS::Bedrock::Guardrail",
    "alarmName": "AWS::CloudWatch::Alarm",
}


def lookup_fields(record: dict) -> dict:
    """The LookupEvents view of one CloudTrail record (the record itself stays in CloudTrailEvent).

    A seeded record may carry "_lookup": {"Username": ..., "Resources": [...]} to set those
    fields exactly; that key is removed from the stored record."""
    override = record.pop("_lookup", {}) or {}
    ident = record.get("userIdentity") or {}
    kind = ident.get("type")
    if kind == "Root":
        username = "root"
    elif kind == "AssumedRole":
        username = str(ident.get("arn", "")).rsplit("/", 1)[-1] or None
    else:
        username = ident.get("userName")
    resources = [
        {"ResourceType": r.get("type"), "ResourceName": r.get("ARN")}
        for r in record.get("resources") or []
        if isinstance(r, dict)
    ]
    params = record.get("requestParameters") or {}
    if isinstance(params, dict):
        for key, rtype in RESOURCE_PARAMS.items():
            if isinstance(params.get(key), str):
                resources.append({"ResourceType": rtype, "ResourceName": params[key]})
    read_only = record.get("readOnly")
    out = {
        "EventId": record["eventID"],
        "EventName": record.get("eventName"),
        "ReadOnly": None if read_only is None else str(read_only).lower(),
        "AccessKeyId": ident.get("accessKeyId"),
        "EventTime": to_epoch(record["eventTime"]),
        "EventSource": record.get("eventSource"),
        "Username": username,
        "Resources": resources,
    }
    out.update(override)
    return {k: v for k, v in out.items() if v is not None}


class CloudTrail:
    def __init__(self):
        self.events: dict[tuple[str, str], dict[str, dict]] = {}  # (account, region) -> id -> event

    def seed(self, body) -> int:
        records = body.get("Records") if isinstance(body, dict) and "Records" in body else body
        if isinstance(records, dict):
            records = [records]
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise ApiError("BadSeed", "body: a CloudTrail record, a list, or {\"Records\": [...]}")
        for record in records:
            record = dict(record)
            record.setdefault("eventID", str(uuid.uuid4()))
            record.setdefault("eventTime", now_iso())
            account = str(record.get("recipientAccountId") or DEFAULT_ACCOUNT_ID)
            region = record.get("awsRegion") or DEFAULT_REGION
            event = lookup_fields(record)
            event["CloudTrailEvent"] = json.dumps(record)
            self.events.setdefault((account, region), {})[record["eventID"]] = event
        return len(records)

    def lookup(self, account: str, region: str, req: dict) -> dict:
        attrs = req.get("LookupAttributes") or []
        if len(attrs) > 1:
            raise ApiError(
                "InvalidLookupAttributesException",
                "You cannot specify more than one lookup attribute.",
            )
        attr = attrs[0] if attrs else None
        if attr is not None and attr.get("AttributeKey") not in LOOKUP_KEYS:
            raise ApiError(
                "InvalidLookupAttributesException",
                f"Invalid attribute key: {attr.get('AttributeKey')}. "
                f"Valid keys: {', '.join(sorted(LOOKUP_KEYS))}.",
            )
        if attr is not None and not attr.get("AttributeValue"):
            raise ApiError("InvalidLookupAttributesException", "AttributeValue must not be empty.")
        if req.get("EventCategory") not in (None, "insight"):
            raise ApiError("InvalidEventCategoryException", "EventCategory must be insight.")
        max_results = req.get("MaxResults", 50)
        if not isinstance(max_results, int) or not 1 <= max_results <= 50:
            raise ApiError("InvalidMaxResultsException", "MaxResults must be between 1 and 50.")
        start = to_epoch(req["StartTime"]) if req.get("StartTime") is not None else None
        end = to_epoch(req["EndTime"]) if req.get("EndTime") is not None else None
        if start is not None and end is not None and start > end:
            raise ApiError("InvalidTimeRangeException", "StartTime must be before EndTime.")

        # The token is a cursor (time, id of the last event returned) bound to the query.
        query = hashlib.sha256(
            json.dumps([attr, start, end, req.get("EventCategory")], sort_keys=True).encode()
        ).hexdigest()[:16]
        cursor = None
        if req.get("NextToken"):
            try:
                tok = json.loads(base64.urlsafe_b64decode(req["NextToken"].encode()))
                assert tok["q"] == query
                cursor = (float(tok["t"]), str(tok["id"]))
            except Exception:
                raise ApiError("InvalidNextTokenException", "Invalid NextToken.") from None

        events = [] if req.get("EventCategory") else list(self.events.get((account, region), {}).values())
        events.sort(key=lambda e: (e["EventTime"], e["EventId"]), reverse=True)

        def matches(e: dict) -> bool:
            if start is not None and e["EventTime"] < start:
                return False
            if end is not None and e["EventTime"] > end:
                return False
            if cursor is not None and (e["EventTime"], e["EventId"]) >= cursor:
                return False
            if attr is None:
                return True
            key, value = attr["AttributeKey"], attr["AttributeValue"]
            if key == "ResourceName":
                return any(r.get("ResourceName") == value for r in e["Resources"])
            if key == "ResourceType":
                return any(r.get("ResourceType") == value for r in e["Resources"])
            return e.get(key) == value

        page = [e for e in events if matches(e)][: max_results + 1]
        out: dict = {"Events": page[:max_results]}
        if len(page) > max_results:
            last = page[max_results - 1]
            tok = {"q": query, "t": last["EventTime"], "id": last["EventId"]}
            out["NextToken"] = base64.urlsafe_b64encode(json.dumps(tok).encode()).decode()
        return out


# ---------------------------------------------------------------------------------------------
# Bedrock guardrails
# ---------------------------------------------------------------------------------------------

GUARDRAIL_ID = re.compile(
    r"^(?:([a-z0-9]+)|arn:aws(?:-[^:]+)?:bedrock:[a-z0-9-]{1,20}:[0-9]{12}:guardrail/([a-z0-9]+))$"
)
GUARDRAIL_VERSION = re.compile(r"^(?:[1-9][0-9]{0,7}|DRAFT)$")
POLICIES = [
    "topicPolicy",
    "contentPolicy",
    "wordPolicy",
    "sensitiveInformationPolicy",
    "contextualGroundingPolicy",
    "automatedReasoningPolicy",
]


def policy_from_config(name: str, config: dict) -> dict:
    """contentPolicyConfig {filtersConfig: [...]} -> contentPolicy {filters: [...]}, and so on."""
    policy = {k[: -len("Config")] if k.endswith("Config") else k: v for k, v in config.items()}
    if name == "contentPolicy":
        filters = []
        for f in policy.get("filters") or []:
            if f.get("type") == "PROMPT_ATTACK" and f.get("outputStrength", "NONE") != "NONE":
                raise ApiError(
                    "ValidationException",
                    "PROMPT_ATTACK content filter strength for response must be NONE.",
                )
            filters.append(
                {
                    "inputModalities": ["TEXT"],
                    "outputModalities": ["TEXT"],
                    "inputAction": "BLOCK",
                    "outputAction": "BLOCK",
                    "inputEnabled": True,
                    "outputEnabled": True,
                    **f,
                }
            )
        policy["filters"] = filters
    return policy


class Guardrails:
    def __init__(self):
        self.items: dict[tuple[str, str], dict[str, dict]] = {}  # (account, region) -> id -> item

    def _find(self, account: str, region: str, ident: str) -> dict:
        m = GUARDRAIL_ID.match(ident or "")
        if not m:
            raise ApiError("ValidationException", f"Invalid guardrailIdentifier: {ident}")
        gid = m.group(1) or m.group(2)
        item = self.items.get((account, region), {}).get(gid)
        if item is None:
            raise ApiError("ResourceNotFoundException", f"Guardrail {gid} not found.", 404)
        return item

    @staticmethod
    def _apply(draft: dict, body: dict) -> None:
        for key in ("name", "blockedInputMessaging", "blockedOutputsMessaging"):
            if not body.get(key):
                raise ApiError("ValidationException", f"{key} is required.")
        draft["name"] = body["name"]
        draft["blockedInputMessaging"] = body["blockedInputMessaging"]
        draft["blockedOutputsMessaging"] = body["blockedOutputsMessaging"]
        for key in ["description", "kmsKeyArn", *POLICIES]:
            draft.pop(key, None)
        if body.get("description"):
            draft["description"] = body["description"]
        if body.get("kmsKeyId"):
            draft["kmsKeyArn"] = body["kmsKeyId"]
        for name in POLICIES:
            if body.get(name + "Config"):
                draft[name] = policy_from_config(name, body[name + "Config"])

    def create(self, account: str, region: str, body: dict) -> dict:
        mine = self.items.setdefault((account, region), {})
        if any(i["draft"]["name"] == body.get("name") for i in mine.values()):
            raise ApiError("ConflictException", f"Guardrail {body.get('name')} already exists.", 409)
        gid = "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(12))
        stamp = now_iso()
        draft = {
            "guardrailId": gid,
            "guardrailArn": f"arn:aws:bedrock:{region}:{account}:guardrail/{gid}",
            "version": "DRAFT",
            "status": "READY",
            "createdAt": stamp,
            "updatedAt": stamp,
        }
        self._apply(draft, body)
        mine[gid] = {"draft": draft, "versions": {}, "next": 1}
        return {k: draft[k] for k in ("guardrailId", "guardrailArn", "version", "createdAt")}

    def get(self, account: str, region: str, ident: str, version: str | None) -> dict:
        item = self._find(account, region, ident)
        version = version or "DRAFT"
        if not GUARDRAIL_VERSION.match(version):
            raise ApiError("ValidationException", f"Invalid guardrailVersion: {version}")
        if version == "DRAFT":
            return item["draft"]
        if version not in item["versions"]:
            raise ApiError("ResourceNotFoundException", f"Guardrail version {version} not found.", 404)
        return item["versions"][version]

    def list(self, account: str, region: str, ident: str | None, max_results: int, token: str | None) -> dict:
        if ident:
            item = self._find(account, region, ident)
            rows = [item["draft"], *item["versions"].values()]
        else:
            rows = [i["draft"] for i in self.items.get((account, region), {}).values()]
        start = int(token) if token and token.isdigit() else 0
        keys = ("name", "description", "version", "status", "createdAt", "updatedAt")
        page = [
            {"id": r["guardrailId"], "arn": r["guardrailArn"], **{k: r[k] for k in keys if k in r}}
            for r in rows[start : start + max_results]
        ]
        out: dict = {"guardrails": page}
        if start + max_results < len(rows):
            out["nextToken"] = str(start + max_results)
        return out

    def create_version(self, account: str, region: str, ident: str, body: dict) -> dict:
        item = self._find(account, region, ident)
        version = str(item["next"])
        item["next"] += 1
        stamp = now_iso()
        snap = json.loads(json.dumps(item["draft"]))
        snap.update(version=version, createdAt=stamp, updatedAt=stamp)
        if body.get("description"):
            snap["description"] = body["description"]
        item["versions"][version] = snap
        return {"guardrailId": snap["guardrailId"], "version": version}

    def update(self, account: str, region: str, ident: str, body: dict) -> dict:
        draft = self._find(account, region, ident)["draft"]
        self._apply(draft, body)
        draft["updatedAt"] = now_iso()
        return {k: draft[k] for k in ("guardrailId", "guardrailArn", "version", "updatedAt")}

    def delete(self, account: str, region: str, ident: str, version: str | None) -> dict:
        item = self._find(account, region, ident)
        if version:
            if item["versions"].pop(version, None) is None:
                raise ApiError("ResourceNotFoundException", f"Guardrail version {version} not found.", 404)
        else:
            del self.items[(account, region)][item["draft"]["guardrailId"]]
        return {}


# ---------------------------------------------------------------------------------------------
# The WSGI application in front of moto
# ---------------------------------------------------------------------------------------------


def describe(environ: dict, body: bytes) -> dict:
    """Service, region, account, operation and protocol of one request, as far as they show."""
    path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "GET")
    info = {"service": None, "region": None, "operation": None, "protocol": "rest"}
    match = re.search(r"Credential=[^/,]+/\d{8}/([^/]+)/([^/]+)/", environ.get("HTTP_AUTHORIZATION", ""))
    if match:
        info["region"], info["service"] = match.group(1), match.group(2)
    target = environ.get("HTTP_X_AMZ_TARGET")
    cbor = re.match(r"^/service/[^/]+/operation/([^/]+)$", path)
    if target:
        info.update(operation=target.rsplit(".", 1)[-1], protocol="json")
    elif cbor:
        info.update(operation=cbor.group(1), protocol="cbor")
    elif environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
        action = parse_qs(body.decode("utf-8", "replace")).get("Action")
        info.update(operation=action[0] if action else None, protocol="query")
    if path.startswith("/moto-api"):
        info.update(service="moto-api", operation=path)
    if info["operation"] is None:
        info["operation"] = f"{method} {path}"
    account = os.environ.get("MOTO_ACCOUNT_ID") or environ.get("HTTP_X_MOTO_ACCOUNT_ID")
    if not account and match:
        from moto.iam.models import get_account_id_from

        key = re.search(r"Credential=([^/,]+)/", environ["HTTP_AUTHORIZATION"])
        account = get_account_id_from(key.group(1)) if key else None
    info["account"] = account or DEFAULT_ACCOUNT_ID
    info["region"] = info["region"] or DEFAULT_REGION
    return info


def json_response(status: int, payload, headers: dict | None = None, ctype: str = "application/json"):
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return status, {"Content-Type": ctype, **(headers or {})}, data


def aws_error(protocol: str, err: ApiError):
    request_id = str(uuid.uuid4())
    if protocol == "query":
        xml = (
            "<ErrorResponse><Error><Type>Sender</Type>"
            f"<Code>{err.code}</Code><Message>{err.message}</Message></Error>"
            f"<RequestId>{request_id}</RequestId></ErrorResponse>"
        )
        return err.status, {"Content-Type": "text/xml", "x-amzn-RequestId": request_id}, xml.encode()
    headers = {"x-amzn-ErrorType": err.code, "x-amzn-RequestId": request_id}
    if protocol == "json":
        return json_response(err.status, {"__type": err.code, "message": err.message}, headers,
                             "application/x-amz-json-1.1")
    return json_response(err.status, {"message": err.message}, headers)


class LocalAws:
    def __init__(self):
        self.moto = DomainDispatcherApplication(create_backend_app)
        self.lock = threading.Lock()
        # DynamoDB makes every single-item write atomic: a ConditionExpression is evaluated and
        # the write applied as one step. moto evaluates the condition, then writes, with no
        # lock, so under this threaded server two conditional writes of one item can both
        # succeed (a lost update). Serializing moto's DynamoDB requests restores per-item
        # atomicity (and makes reads see whole writes). Other services are not affected.
        self.dynamodb_lock = threading.Lock()
        self.cloudtrail = CloudTrail()
        self.guardrails = Guardrails()
        self.faults = Faults()
        self.log: deque[dict] = deque(maxlen=20000)
        self.seq = 0
        self.rate, self.burst = 2.0, 2.0
        self.buckets: dict[tuple[str, str], TokenBucket] = {}

    def reset_aws_state(self) -> None:
        with self.lock:
            self.cloudtrail = CloudTrail()
            self.guardrails = Guardrails()
            self.buckets.clear()

    # -- WSGI entry ---------------------------------------------------------------------------

    def __call__(self, environ, start_response):
        body = get_input_stream(environ).read()
        environ["wsgi.input"] = BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        environ.pop("wsgi.input_terminated", None)
        environ.pop("HTTP_TRANSFER_ENCODING", None)
        path = environ.get("PATH_INFO", "")

        if path.startswith("/_vigil/"):
            try:
                status, headers, data = self.control(environ["REQUEST_METHOD"], path, environ, body)
            except ApiError as err:
                status, headers, data = json_response(400, {"error": err.code, "message": err.message})
            except (ValueError, TypeError, KeyError, AttributeError) as exc:
                status, headers, data = json_response(400, {"error": "BadRequest", "message": repr(exc)})
            start_response(f"{status} {HTTPStatus(status).phrase}", list(headers.items()))
            return [data]

        info = describe(environ, body)
        mono, wall = time.monotonic(), time.time()
        entry = {
            "mono_ms": round(mono * 1000, 3),
            "wall": datetime.fromtimestamp(wall, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "wall_ms": round(wall * 1000, 3),
            "method": environ.get("REQUEST_METHOD"),
            "path": path,
            "service": info["service"],
            "operation": info["operation"],
            "account": info["account"],
            "region": info["region"],
            "status": None,
            "handled_by": None,
        }
        with self.lock:
            self.seq += 1
            entry["seq"] = self.seq
            self.log.append(entry)

        result = self.extension(environ, info, body, entry)
        if result is not None:
            status, headers, data = result
            entry["status"] = status
            entry["duration_ms"] = round((time.monotonic() - mono) * 1000, 3)
            start_response(f"{status} {HTTPStatus(status).phrase}", list(headers.items()))
            return [data]

        entry["handled_by"] = entry["handled_by"] or "moto"
        if path == "/moto-api/reset" and environ.get("REQUEST_METHOD") == "POST":
            self.reset_aws_state()

        def recording_start_response(status, headers, exc_info=None):
            entry["status"] = int(status.split(" ", 1)[0])
            entry["duration_ms"] = round((time.monotonic() - mono) * 1000, 3)
            return start_response(status, headers, exc_info)

        try:
            if environ.get("HTTP_X_AMZ_TARGET", "").startswith(DYNAMODB_TARGET):
                with self.dynamodb_lock:
                    # The whole answer is produced under the lock, not only its start.
                    answer = self.moto(environ, recording_start_response)
                    try:
                        data = b"".join(answer)
                    finally:
                        close = getattr(answer, "close", None)
                        if close:
                            close()
                return [data]
            return self.moto(environ, recording_start_response)
        except Exception:
            entry["status"] = 500  # the server answers 500 with moto's traceback in its log
            raise

    # -- AWS extensions -----------------------------------------------------------------------

    def extension(self, environ, info, body, entry):
        """Answers what moto lacks (and injected faults); None lets moto answer."""
        service, op, protocol = info["service"], info["operation"], info["protocol"]
        account, region = info["account"], info["region"]
        try:
            route = None
            if service == "cloudtrail" and LOOKUP_EVENTS.match(environ.get("HTTP_X_AMZ_TARGET", "")):
                route = "lookup"
            elif service == "bedrock" and re.match(r"^/guardrails(/|$)", environ.get("PATH_INFO", "")):
                route = "guardrails"
                op = entry["operation"] = self.guardrail_op(environ)

            with self.lock:
                fault = self.faults.take(service, op) if service else None
            if fault and fault["mode"] in ("timeout", "hang"):
                # Hold the request (the client should give up first), then answer as usual
                # (timeout) or as a gateway that gave up (hang).
                entry["handled_by"] = f"fault:{fault['mode']}"
                time.sleep(float(fault.get("delay", 30)))
                if fault["mode"] == "hang":
                    return aws_error(protocol, ApiError("GatewayTimeout", "Injected hang", 504))
            elif fault:
                entry["handled_by"] = f"fault:{fault['mode']}"
                return self.apply_fault(fault["mode"], protocol)

            if route == "lookup":
                with self.lock:
                    bucket = self.buckets.get((account, region))
                    if bucket is None and self.rate:
                        bucket = self.buckets[(account, region)] = TokenBucket(self.rate, self.burst)
                    allowed = bucket.take() if bucket else True
                    if not allowed:
                        entry["handled_by"] = "throttle"
                        raise ApiError("ThrottlingException", "Rate exceeded")
                    entry["handled_by"] = entry["handled_by"] or "vigil"
                    result = self.cloudtrail.lookup(account, region, json.loads(body or b"{}"))
                return json_response(200, result, {"x-amzn-RequestId": str(uuid.uuid4())},
                                     "application/x-amz-json-1.1")
            if route == "guardrails":
                entry["handled_by"] = entry["handled_by"] or "vigil"
                with self.lock:
                    return self.guardrail_call(op, environ, account, region, body)
        except ApiError as err:
            return aws_error(protocol, err)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:  # a request we cannot read
            traceback.print_exc()
            code = "SerializationException" if protocol == "json" else "ValidationException"
            return aws_error(protocol, ApiError(code, f"Cannot read the request: {exc!r}"))
        return None

    @staticmethod
    def guardrail_op(environ) -> str:
        method, path = environ["REQUEST_METHOD"], environ["PATH_INFO"]
        if path.rstrip("/") == "/guardrails":
            return {"POST": "CreateGuardrail", "GET": "ListGuardrails"}.get(method, method)
        return {
            "GET": "GetGuardrail",
            "POST": "CreateGuardrailVersion",
            "PUT": "UpdateGuardrail",
            "DELETE": "DeleteGuardrail",
        }.get(method, method)

    def guardrail_call(self, op, environ, account, region, body):
        query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        ident = environ["PATH_INFO"][len("/guardrails/") :]
        data = json.loads(body) if body else {}
        g = self.guardrails
        if op == "CreateGuardrail":
            return json_response(202, g.create(account, region, data))
        if op == "ListGuardrails":
            size = int(query.get("maxResults", "1000"))
            if not 1 <= size <= 1000:
                raise ApiError("ValidationException", "maxResults must be between 1 and 1000.")
            return json_response(200, g.list(account, region, query.get("guardrailIdentifier"),
                                             size, query.get("nextToken")))
        if op == "GetGuardrail":
            return json_response(200, g.get(account, region, ident, query.get("guardrailVersion")))
        if op == "CreateGuardrailVersion":
            return json_response(202, g.create_version(account, region, ident, data))
        if op == "UpdateGuardrail":
            return json_response(202, g.update(account, region, ident, data))
        if op == "DeleteGuardrail":
            return json_response(202, g.delete(account, region, ident, query.get("guardrailVersion")))
        raise ApiError("UnknownOperationException", f"{environ['REQUEST_METHOD']} not supported", 405)

    @staticmethod
    def apply_fault(mode: str, protocol: str):
        if mode == "throttle":
            if protocol == "query":
                return aws_error(protocol, ApiError("Throttling", "Rate exceeded"))
            status = 429 if protocol == "rest" else 400
            return aws_error(protocol, ApiError("ThrottlingException", "Rate exceeded", status))
        if mode == "error500":
            return aws_error(protocol, ApiError("InternalFailure", "Injected internal error", 500))
        # malformed: a 200 whose body is cut off.
        ctype = "text/xml" if protocol == "query" else "application/x-amz-json-1.1"
        return 200, {"Content-Type": ctype}, b'{"Events": [{"EventId": "trunc'

    # -- control API (not AWS) ----------------------------------------------------------------

    def control(self, method, path, environ, body):
        data = json.loads(body) if body.strip() else None
        route = (method, path.rstrip("/"))
        if route == ("POST", "/_vigil/cloudtrail/events"):
            with self.lock:
                return json_response(200, {"stored": self.cloudtrail.seed(data)})
        if route == ("POST", "/_vigil/cloudtrail/reset"):
            with self.lock:
                self.cloudtrail = CloudTrail()
                self.buckets.clear()
            return json_response(200, {"ok": True})
        if route == ("POST", "/_vigil/faults"):
            with self.lock:
                items = data if isinstance(data, list) else [data or {}]
                for item in items:
                    if item.get("clear"):
                        self.faults = Faults()
                    if "cloudtrail_rate" in item or "cloudtrail_burst" in item:
                        self.rate = float(item.get("cloudtrail_rate", self.rate) or 0)
                        self.burst = float(item.get("cloudtrail_burst", max(self.rate, 1.0)) or 1)
                        self.buckets.clear()
                    if "mode" in item:
                        self.faults.add(item)
                return json_response(200, self.control_state())
        if route == ("GET", "/_vigil/faults"):
            with self.lock:
                return json_response(200, self.control_state())
        if route == ("GET", "/_vigil/requests"):
            query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
            since = int(query.get("since", 0))
            with self.lock:
                rows = [
                    dict(e)
                    for e in self.log
                    if e["seq"] > since
                    and query.get("service", e["service"]) == e["service"]
                    and query.get("operation", e["operation"]) == e["operation"]
                ]
            return json_response(200, {"requests": rows})
        if route == ("POST", "/_vigil/reset"):
            with self.lock:
                self.faults = Faults()
                self.log.clear()
                self.rate, self.burst = 2.0, 2.0
            self.reset_aws_state()
            moto = Client(self.moto).post("/moto-api/reset")
            return json_response(200, {"ok": True, "moto_reset": moto.status_code})
        return json_response(404, {"error": "NotFound", "message": f"{method} {path}"})

    def control_state(self) -> dict:
        return {"cloudtrail_rate": self.rate, "cloudtrail_burst": self.burst, "faults": self.faults.entries}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--port-file", help="write the port here once listening")
    args = parser.parse_args(argv)

    server = make_server(
        "127.0.0.1", args.port, LocalAws(), threaded=True, request_handler=MotoRequestHandler
    )
    port = server.server_port
    os.environ.setdefault("MOTO_PORT", str(port))
    if args.port_file:
        tmp = f"{args.port_file}.tmp"
        with open(tmp, "w") as fh:
            fh.write(f"{port}\n")
        os.replace(tmp, args.port_file)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"READY port={port}", flush=True)
    try:
        server.serve_forever()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
