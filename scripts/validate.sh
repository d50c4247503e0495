#!/usr/bin/env bash
# Validates the SAM template offline, with no AWS credentials: `make validate`.
#
#   1. cfn-lint (with the cfn-lint-serverless rules) on template.yaml as written, and the list
#      of rules the template switches off, each of which must have a comment saying why;
#   2. the SAM transform (aws-sam-translator, what `sam validate` runs) into CloudFormation;
#   3. cfn-lint (same rules) on that CloudFormation: the rules, permissions and invoke
#      configurations SAM generates;
#   4. a least-privilege guard on the transformed IAM policies: no wildcard actions, and
#      Resource "*" only for actions that have no resource type;
#   5. checkov on template.yaml (SAM resources as written);
#   6. checkov on the transformed CloudFormation (the generated resources too).
#
# Every step runs, then the script exits non-zero if any step failed. cfn-lint fails on errors
# *and* warnings. A check that does not apply is skipped in the template itself, next to the
# resource, with its reason (Metadata: cfn-lint ignore_checks / checkov skip), and this script
# prints every checkov skip with that reason.
#
# The tools live in their own venv, target/validate-venv (requirements-validate.txt says why
# not .venv), installed on first use and again whenever requirements-validate.txt changes, with
# --require-hashes (every requirement there carries its sha256 hashes).
#
# Usage: scripts/validate.sh [TEMPLATE]        (default template.yaml)
#        VALIDATE_VENV=path scripts/validate.sh
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

TEMPLATE=${1:-template.yaml}
VENV=${VALIDATE_VENV:-target/validate-venv}
OUT=target/validate
REQUIREMENTS=requirements-validate.txt

# Offline and quiet: no telemetry, no update checks, no instance-metadata probing. The SAM
# transform needs a Region for pseudo parameters; it calls no AWS API.
export SAM_CLI_TELEMETRY=0
export CKV_SKIP_PACKAGE_UPDATE_CHECK=true
export AWS_EC2_METADATA_DISABLED=true
export AWS_DEFAULT_REGION=${AWS_DEFAULT_REGION:-${AWS_REGION:-us-east-1}}

if [[ ! -f $TEMPLATE ]]; then
  echo "validate: $TEMPLATE not found" >&2
  exit 2
fi

ensure_venv() {
  local want python start
  want=$(sha256sum "$REQUIREMENTS" | cut -d' ' -f1)
  if [[ -x $VENV/bin/python && -f $VENV/.installed && $(cat "$VENV/.installed") == "$want" ]]; then
    return 0
  fi
  python=python3.11
  command -v "$python" >/dev/null 2>&1 || python=python3
  if [[ ! -x $VENV/bin/python ]]; then
    mkdir -p "$(dirname "$VENV")"
    "$python" -m venv "$VENV"
  fi
  start=$SECONDS
  echo "validate: installing $REQUIREMENTS into $VENV"
  "$VENV/bin/python" -m pip install --disable-pip-version-check --quiet --require-hashes --requirement "$REQUIREMENTS"
  echo "$want" >"$VENV/.installed"
  echo "validate: installed in $((SECONDS - start))s"
}

# sam_transform IN OUT: the SAM transform, as `sam validate` does it. Local CodeUri/ContentUri
# paths become placeholder S3 URIs (the translator accepts only S3 there; `sam build` and
# `sam deploy` replace them for real). No managed policy is looked up: the template gives each
# function an explicit role, so there is nothing to resolve.
sam_transform() {
  "$VENV/bin/python" - "$1" "$2" <<'PY'
import json
import sys

from cfnlint.decode import decode
from samtranslator.model.exceptions import InvalidDocumentException
from samtranslator.translator.transform import transform

source, target = sys.argv[1], sys.argv[2]
template, problems = decode(source)
if problems:
    for p in problems:
        print(f"  {p}", file=sys.stderr)
    sys.exit(1)

LOCAL_URIS = {
    "AWS::Serverless::Function": "CodeUri",
    "AWS::Serverless::LayerVersion": "ContentUri",
}
for name, resource in template.get("Resources", {}).items():
    key = LOCAL_URIS.get(resource.get("Type"))
    properties = resource.get("Properties", {})
    if key and isinstance(properties.get(key), str) and not properties[key].startswith("s3://"):
        properties[key] = f"s3://placeholder-bucket/{name}"


class NoManagedPolicies:
    def load(self):
        return {}


try:
    result = transform(template, {}, NoManagedPolicies())
except InvalidDocumentException as e:
    for cause in e.causes:
        print(f"  {cause.message}", file=sys.stderr)
    sys.exit(1)
with open(target, "w") as f:
    json.dump(result, f, indent=1)
print(f"  {len(result.get('Resources', {}))} CloudFormation resources")
PY
}

# lint_ignores FILE: lists every cfn-lint rule the template switches off (resource Metadata
# `cfn-lint: config: ignore_checks`) and fails unless a comment naming the rule stands above it
# in the same list: the reason lives next to the exemption.
lint_ignores() {
  "$VENV/bin/python" - "$1" <<'PY'
import re
import sys

lines = open(sys.argv[1]).read().splitlines()
resource, block_indent, comments, found, missing = None, None, [], [], []
for number, line in enumerate(lines, 1):
    m = re.match(r"^  ([A-Za-z0-9]+):\s*$", line)
    if m:
        resource = m.group(1)
    stripped = line.strip()
    indent = len(line) - len(line.lstrip())
    if stripped == "ignore_checks:":
        block_indent, comments = indent, []
        continue
    if block_indent is None:
        continue
    if stripped and indent <= block_indent and not stripped.startswith("#"):
        block_indent = None
        continue
    if stripped.startswith("#"):
        comments.append(stripped)
    elif stripped.startswith("- "):
        rule = stripped[2:].strip().strip("\"'")
        found.append(f"{resource} {rule}")
        if not any(rule in c for c in comments):
            missing.append(f"{resource} {rule} (line {number})")
print(f"  {len(found)} cfn-lint rules switched off: {', '.join(found) or 'none'}")
for m in missing:
    print(f"  FAILED  {m}: no comment naming the rule says why")
sys.exit(1 if missing else 0)
PY
}

# checkov_run FILE LABEL: checkov on one template; prints the counts, every failure and every
# skip with its written reason; fails when a check failed or the file could not be parsed.
checkov_run() {
  local file=$1 label=$2 report rc=0
  report="$OUT/checkov-$label.json"
  "$VENV/bin/checkov" -f "$file" --framework cloudformation --skip-download --compact \
    --output json >"$report" 2>"$OUT/checkov-$label.log" || rc=$?
  "$VENV/bin/python" - "$report" "$label" "$rc" <<'PY'
import json
import sys

path, label, rc = sys.argv[1], sys.argv[2], int(sys.argv[3])
try:
    with open(path) as f:
        data = json.load(f)
except (OSError, ValueError) as e:
    print(f"  checkov produced no report ({e}); exit {rc}")
    sys.exit(1)
reports = data if isinstance(data, list) else [data]
failed = 0
for report in reports:
    s = report.get("summary", {})
    failed += s.get("failed", 0) + s.get("parsing_errors", 0)
    # Worded so CI does not take it for a test runner's "N passed, N failed" closing line.
    print(
        f"  checkov {label}: passed {s.get('passed', 0)}, failed {s.get('failed', 0)}, "
        f"skipped {s.get('skipped', 0)}, parsing errors {s.get('parsing_errors', 0)}, "
        f"resources {s.get('resource_count', 0)}"
    )
    results = report.get("results", {})
    for c in results.get("failed_checks", []):
        lines = c.get("file_line_range") or ["?", "?"]
        print(f"  FAILED  {c['check_id']} {c['resource']} (lines {lines[0]}-{lines[1]}): {c['check_name']}")
    for c in results.get("skipped_checks", []):
        reason = ((c.get("check_result") or {}).get("suppress_comment") or "").strip()
        if reason in ("", "No comment provided"):
            # A skip must say why, next to the resource.
            print(f"  FAILED  {c['check_id']} {c['resource']}: skipped without a written reason")
            failed += 1
        else:
            print(f"  skipped {c['check_id']} {c['resource']}: {reason}")
sys.exit(1 if failed or rc else 0)
PY
}

# iam_guard FILE: the least-privilege rules no linter above enforces, over every IAM policy of
# the transformed template (roles' inline policies, AWS::IAM::Policy, managed policies): no
# wildcard in an action, and Resource "*" only for actions that have no resource type, from the
# list below (each one commented where template.yaml grants it). Key and resource policies are
# not IAM policies and are not checked here.
iam_guard() {
  "$VENV/bin/python" - "$1" <<'PY'
import json
import sys

# Actions IAM accepts only with Resource "*" (no resource type in the Service Authorization
# Reference). Add one here only with the same justification next to it in template.yaml.
STAR_RESOURCE_OK = {
    "cloudtrail:LookupEvents",
    "bedrock:GetModelInvocationLoggingConfiguration",
    "cloudwatch:GetMetricData",
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
}


def as_list(v):
    return v if isinstance(v, list) else [v]


def documents(resources):
    for name, r in resources.items():
        props = r.get("Properties", {})
        kind = r.get("Type")
        if kind == "AWS::IAM::Role":
            for p in props.get("Policies", []):
                yield f"{name}/{p.get('PolicyName')}", p.get("PolicyDocument", {})
        elif kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            yield name, props.get("PolicyDocument", {})


def statements(doc):
    # Conditional statements (Fn::If) are checked in both branches.
    for st in as_list(doc.get("Statement", [])):
        if isinstance(st, dict) and "Fn::If" in st:
            for branch in st["Fn::If"][1:]:
                if isinstance(branch, dict) and "Ref" not in branch:
                    yield branch
        elif isinstance(st, dict):
            yield st


with open(sys.argv[1]) as f:
    resources = json.load(f).get("Resources", {})
problems, count = [], 0
for where, doc in documents(resources):
    for st in statements(doc):
        if st.get("Effect") != "Allow":
            continue
        count += 1
        actions = [a for a in as_list(st.get("Action", [])) if isinstance(a, str)]
        sid = st.get("Sid", "?")
        for a in actions:
            if "*" in a:
                problems.append(f"{where} {sid}: wildcard action {a!r}")
        if "*" in as_list(st.get("Resource", [])):
            for a in actions:
                if a not in STAR_RESOURCE_OK:
                    problems.append(f'{where} {sid}: {a} on Resource "*" (it has a resource type: scope it)')
        if "NotAction" in st or "NotResource" in st:
            problems.append(f"{where} {sid}: NotAction/NotResource in an Allow")
for p in problems:
    print(f"  FAILED  {p}")
print(f"  {count} Allow statements checked")
sys.exit(1 if problems else 0)
PY
}

ensure_venv
mkdir -p "$OUT"
TRANSFORMED="$OUT/template.transformed.json"
rm -f "$TRANSFORMED" # never lint a stale transform
failures=()

step() {
  local name=$1
  shift
  printf '\n--- %s\n' "$name"
  if "$@"; then
    echo "  ok"
  else
    echo "  FAILED"
    failures+=("$name")
  fi
}

step "cfn-lint $TEMPLATE (+ cfn-lint-serverless rules)" \
  "$VENV/bin/cfn-lint" "$TEMPLATE" -a cfn_lint_serverless.rules
step "cfn-lint rules switched off in $TEMPLATE, each with its reason" lint_ignores "$TEMPLATE"
step "SAM transform -> $TRANSFORMED" sam_transform "$TEMPLATE" "$TRANSFORMED"
if [[ -f $TRANSFORMED ]]; then
  step "cfn-lint on the SAM transform (+ cfn-lint-serverless rules)" \
    "$VENV/bin/cfn-lint" "$TRANSFORMED" -a cfn_lint_serverless.rules
fi
if [[ -f $TRANSFORMED ]]; then
  step "IAM: no wildcard actions, Resource \"*\" only where IAM allows nothing else" \
    iam_guard "$TRANSFORMED"
fi
step "checkov $TEMPLATE" checkov_run "$TEMPLATE" template
if [[ -f $TRANSFORMED ]]; then
  step "checkov on the SAM transform" checkov_run "$TRANSFORMED" transformed
fi

echo
if ((${#failures[@]} > 0)); then
  echo "validate: FAILED: ${failures[*]}" >&2
  exit 1
fi
echo "validate: ok ($TEMPLATE)"
