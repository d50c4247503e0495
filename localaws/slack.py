"""A Slack stand-in for vigil's tests: incoming webhooks, chat.postMessage / chat.update, usergroups.users.list, response_urls.

Test infrastructure, not a product. Listens on 127.0.0.1 only, records every request, and can be
scripted to answer the way Slack does when things go wrong. See localaws/README.md.

    python localaws/slack.py --port 0 --port-file target/localaws/slack.port
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import sys
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

# Default bodies for scripted webhook answers, as Slack words them.
WEBHOOK_BODIES = {400: "invalid_payload", 403: "action_prohibited", 404: "no_service",
                  410: "channel_is_archived", 429: "rate_limited", 500: "internal_error"}


def block_error(payload: dict) -> str | None:
    """The limits Slack enforces on a message, answered as Slack does (a small subset)."""
    blocks = payload.get("blocks")
    if blocks is None:
        return None if payload.get("text") else "no_text"
    if not isinstance(blocks, list) or len(blocks) > 50:
        return "invalid_blocks"
    for block in blocks:
        if not isinstance(block, dict) or "type" not in block:
            return "invalid_blocks"
        text = (block.get("text") or {}).get("text", "") if isinstance(block.get("text"), dict) else ""
        if block["type"] == "header" and len(text) > 150:
            return "invalid_blocks"
        if block["type"] == "section" and len(text) > 3000:
            return "invalid_blocks"
    return None


class State:
    def __init__(self):
        self.lock = threading.Lock()
        self.requests: list[dict] = []
        self.script: list[dict] = []
        self.messages: dict[tuple[str, str], dict] = {}
        # usergroups.users.list: group id -> member user ids (set with /_stand-in/usergroups).
        self.usergroups: dict[str, list[str]] = {}
        self.last_ts = 0  # microseconds

    def next_ts(self) -> str:
        micros = max(int(time.time() * 1_000_000), self.last_ts + 1)
        self.last_ts = micros
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"


STATE = State()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "slack-stand-in"

    def log_message(self, fmt, *args):  # to stderr, like http.server, with a prefix
        sys.stderr.write("slack-stand-in: " + (fmt % args) + "\n")

    def reply(self, status: int, body, ctype: str = "application/json", headers: dict | None = None):
        data = body if isinstance(body, bytes) else (
            body.encode() if isinstance(body, str) else json.dumps(body).encode())
        # Log the answer before sending it: a client that reads the request log right after
        # its response must find the status there.
        record = getattr(self, "current_record", None)
        if record is not None:
            with STATE.lock:
                record["status"], record["response"] = status, data.decode("utf-8", "replace")
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, str(value))
        self.end_headers()
        self.wfile.write(data)
        return status, data.decode("utf-8", "replace")

    def do_GET(self):
        self.current_record = None
        if urlsplit(self.path).path == "/_stand-in/requests":
            with STATE.lock:
                snapshot = json.dumps({"requests": STATE.requests})
            return self.reply(200, snapshot)
        return self.reply(404, {"ok": False, "error": "unknown_method"})

    def do_POST(self):
        # One handler serves every request of a keep-alive connection: forget the last record.
        self.current_record = None
        mono, wall = time.monotonic(), time.time()
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        path = urlsplit(self.path).path

        if path == "/_stand-in/script":
            queue = json.loads(raw or b"[]")
            with STATE.lock:
                STATE.script = list(queue.get("responses", []) if isinstance(queue, dict) else queue)
            return self.reply(200, {"ok": True, "queued": len(STATE.script)})
        if path == "/_stand-in/reset":
            with STATE.lock:
                STATE.requests.clear()
                STATE.script.clear()
                STATE.messages.clear()
                STATE.usergroups.clear()
            return self.reply(200, {"ok": True})
        if path == "/_stand-in/usergroups":
            # {"S0123": ["U1", "U2"], ...}: replaces the user groups.
            groups = json.loads(raw or b"{}")
            if not isinstance(groups, dict):
                return self.reply(400, {"ok": False, "error": "expected an object"})
            with STATE.lock:
                STATE.usergroups = {str(k): [str(u) for u in v] for k, v in groups.items()}
            return self.reply(200, {"ok": True, "groups": len(STATE.usergroups)})

        body_text = raw.decode("utf-8", "replace")
        ctype = self.headers.get("Content-Type", "")
        payload = None
        if "application/x-www-form-urlencoded" in ctype:
            form = {k: v[0] for k, v in parse_qs(body_text).items()}
            payload = json.loads(form["payload"]) if "payload" in form else form
        else:
            try:
                payload = json.loads(body_text) if body_text else None
            except ValueError:
                payload = None
        record = {
            "mono_ms": round(mono * 1000, 3),
            "wall": datetime.fromtimestamp(wall, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "wall_ms": round(wall * 1000, 3),
            "method": "POST",
            "path": path,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body": body_text,
            "json": payload,
        }
        with STATE.lock:
            record["seq"] = len(STATE.requests) + 1
            STATE.requests.append(record)
            scripted = STATE.script.pop(0) if STATE.script else None
        self.current_record = record

        if scripted and scripted.get("delay"):
            time.sleep(float(scripted["delay"]))
        if scripted and scripted.get("malformed"):
            # A 200 that is not Slack's answer: a proxy's error page, a cut-off body.
            status, answer = self.malformed(path)
        elif path.startswith("/services/"):
            status, answer = self.webhook(payload, scripted)
        elif path in ("/api/chat.postMessage", "/api/chat.update"):
            status, answer = self.web_api(path[len("/api/"):], payload, scripted)
        elif path == "/api/usergroups.users.list":
            status, answer = self.usergroup_users(payload, scripted)
        elif path.startswith("/actions/"):
            # An interaction's response_url (hooks.slack.com/actions/...): Slack answers
            # {"ok": true}, or 404 "expired_url" after 30 minutes / five uses.
            if scripted and scripted.get("status", 200) != 200:
                status, answer = self.reply(int(scripted["status"]), {"ok": False, "error": scripted.get("error", "expired_url")})
            elif not isinstance(payload, dict):
                status, answer = self.reply(400, {"ok": False, "error": "invalid_payload"})
            else:
                status, answer = self.reply(200, {"ok": True})
        else:
            status, answer = self.reply(404, {"ok": False, "error": "unknown_method"})
        record["status"], record["response"] = status, answer

    def malformed(self, path):
        if path.startswith("/services/"):
            return self.reply(200, "<html><head><title>502 Bad Gat", "text/html")
        return self.reply(200, '{"ok": tr')

    def webhook(self, payload, scripted):
        if scripted and scripted.get("status", 200) != 200:
            status = int(scripted["status"])
            body = scripted.get("body") or scripted.get("error") or WEBHOOK_BODIES.get(status, "error")
            headers = {"Retry-After": scripted.get("retry_after", 1)} if status == 429 else {}
            return self.reply(status, body, "text/plain", headers)
        if not isinstance(payload, dict):
            return self.reply(400, "invalid_payload", "text/plain")
        error = block_error(payload)
        if error:
            return self.reply(400, error, "text/plain")
        return self.reply(200, "ok", "text/plain")

    def usergroup_users(self, payload, scripted):
        """usergroups.users.list: {"ok": true, "users": [...]}, or Slack's errors."""
        refused = self.scripted_or_unauthorised(payload, scripted)
        if refused:
            return refused
        group = payload.get("usergroup") if isinstance(payload, dict) else None
        with STATE.lock:
            members = STATE.usergroups.get(group) if group else None
        if members is None:
            return self.reply(200, {"ok": False, "error": "no_such_subteam"})
        return self.reply(200, {"ok": True, "users": list(members)})

    def scripted_or_unauthorised(self, payload, scripted):
        """The Web API's answer before the method runs: a scripted failure, or Slack's
        `not_authed` / `invalid_auth` for a missing or malformed bot token; None to go on."""
        if scripted and scripted.get("status", 200) != 200:
            status = int(scripted["status"])
            error = scripted.get("body") or scripted.get("error")
            if status == 429:
                return self.reply(429, {"ok": False, "error": error or "ratelimited"},
                                  headers={"Retry-After": scripted.get("retry_after", 1)})
            if status >= 500:
                return self.reply(status, {"ok": False, "error": error or "internal_error"})
            # Slack's Web API reports other errors with HTTP 200 and ok=false.
            return self.reply(200, {"ok": False, "error": error or "invalid_arguments"})
        payload = payload if isinstance(payload, dict) else {}
        auth = self.headers.get("Authorization", "")
        token = auth[len("Bearer "):] if auth.startswith("Bearer ") else payload.get("token", "")
        if not token.startswith("xoxb-") or len(token) <= len("xoxb-"):
            return self.reply(200, {"ok": False, "error": "invalid_auth" if token else "not_authed"})
        return None

    def web_api(self, method, payload, scripted):
        refused = self.scripted_or_unauthorised(payload, scripted)
        if refused:
            return refused
        payload = payload if isinstance(payload, dict) else {}
        channel = payload.get("channel")
        if not channel:
            return self.reply(200, {"ok": False, "error": "channel_not_found"})
        if isinstance(channel, str) and channel.startswith("#"):  # Slack answers with the id
            channel = "C" + hashlib.sha1(channel.encode()).hexdigest()[:10].upper()
        for key in ("blocks", "attachments"):  # form posts carry these as JSON strings
            if isinstance(payload.get(key), str):
                try:
                    payload[key] = json.loads(payload[key])
                except ValueError:
                    return self.reply(200, {"ok": False, "error": f"invalid_{key}"})
        error = block_error(payload)
        if error:
            return self.reply(200, {"ok": False, "error": error})
        message = {"type": "message", "text": payload.get("text", ""), "user": "U0STANDIN",
                   "bot_id": "B0STANDIN", "app_id": "A0STANDIN"}
        for key in ("blocks", "attachments", "thread_ts"):
            if key in payload:
                message[key] = payload[key]
        with STATE.lock:
            if method == "chat.postMessage":
                ts = STATE.next_ts()
                message["ts"] = ts
            else:
                ts = str(payload.get("ts", ""))
                if (channel, ts) not in STATE.messages:
                    return self.reply(200, {"ok": False, "error": "message_not_found"})
                message = {**STATE.messages[(channel, ts)], **message, "ts": ts,
                           "edited": {"user": "U0STANDIN", "ts": STATE.next_ts()}}
            STATE.messages[(channel, ts)] = message
        answer = {"ok": True, "channel": channel, "ts": ts, "message": message}
        if method == "chat.update":
            answer["text"] = message.get("text", "")
        return self.reply(200, answer)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--port-file", help="write the port here once listening")
    args = parser.parse_args(argv)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    port = server.server_address[1]
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
