"""Black-box test of Missive as grpcurl sees it.

Starts the real `missive` binary (MISSIVE_BIN, default target/debug/missive) on a free
loopback port with a fresh SQLite database, and talks to it only through server reflection
and JSON request bodies: no generated stubs, no .proto files. Only SQLite is needed;
MISSIVE_TEST_DATABASE_URL is ignored.

Run: .venv/bin/python -m pytest -q tests/python
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc
import pytest

from reflector import Reflector, rpc_error, start_server, to_json

ADMIN = "missive.v1.AdminService"
CONVERSATIONS = "missive.v1.ConversationService"
MESSAGES = "missive.v1.MessageService"
EVENTS = "missive.v1.EventService"

FIRST = "Hi! Is the truck still available?"
REPLY = "Yes, it is. Want to see it on Saturday?"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = start_server(str(tmp_path_factory.mktemp("missive")))
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def admin(server):
    with Reflector(server.target, server.admin_key) as r:
        yield r


def create_member(admin: Reflector, name: str, email: str) -> tuple[str, str]:
    """CreateUser + CreateApiKey as the admin; returns (user id, plain key)."""
    user = admin.call(
        f"{ADMIN}/CreateUser",
        f'{{"user": {{"role": "ROLE_MEMBER", "display_name": "{name}", "email": "{email}"}}}}',
    )
    assert user["id"].startswith("usr_")
    assert user["role"] == "ROLE_MEMBER"
    assert user["displayName"] == name
    created = admin.call(f"{ADMIN}/CreateApiKey", {"user_id": user["id"], "name": f"{name} key"})
    # grpcurl prints lowerCamelCase names: apiKey, userId.
    assert created["apiKey"]["userId"] == user["id"]
    assert created["key"].startswith("msk_")
    assert created["key"].startswith(created["apiKey"]["prefix"])
    return user["id"], created["key"]


@dataclass
class Scenario:
    buyer_id: str
    seller_id: str
    buyer: Reflector
    seller: Reflector
    created: dict
    reply: dict

    @property
    def conversation_id(self) -> str:
        return self.created["conversation"]["id"]


@pytest.fixture(scope="module")
def scenario(server, admin):
    """Buyer and seller; the buyer opens a conversation about a listing with a first
    message; the seller replies."""
    buyer_id, buyer_key = create_member(admin, "Bob Buyer", "bob@example.com")
    seller_id, seller_key = create_member(admin, "Sue Seller", "sue@example.com")
    buyer = Reflector(server.target, buyer_key)
    seller = Reflector(server.target, seller_key)
    created = buyer.call(
        f"{CONVERSATIONS}/CreateConversation",
        {
            "participants": [
                {"user_id": buyer_id, "label": "buyer"},
                {"user_id": seller_id, "label": "seller"},
            ],
            "subject": {"kind": "listing", "external_id": "lst_abc", "title": "2021 Volvo FH 500"},
            "first_message": {"content": FIRST},
        },
    )
    reply = seller.call(
        f"{MESSAGES}/SendMessage",
        {"conversation_id": created["conversation"]["id"], "content": REPLY},
    )
    yield Scenario(buyer_id, seller_id, buyer, seller, created, reply)
    buyer.close()
    seller.close()


def test_reflection_lists_the_missive_services(admin):
    services = admin.list_services()
    for name in (ADMIN, CONVERSATIONS, MESSAGES, EVENTS):
        assert name in services
    assert "grpc.health.v1.Health" in services
    assert f"{MESSAGES}.SendMessage" in admin.list_methods(MESSAGES)
    assert f"{EVENTS}.Subscribe" in admin.list_methods(EVENTS)


def test_reflection_resolves_method_types(admin):
    request_cls, response_cls = admin.types(f"{MESSAGES}/SendMessage")
    assert request_cls.DESCRIPTOR.full_name == "missive.v1.SendMessageRequest"
    assert response_cls.DESCRIPTOR.full_name == "missive.v1.Message"
    subscribe = admin.method(f"{EVENTS}/Subscribe")
    assert subscribe.server_streaming and not subscribe.client_streaming
    assert subscribe.output_type.full_name == "missive.v1.Event"


def test_get_caller_is_the_admin(admin):
    caller = admin.call(f"{ADMIN}/GetCaller", "{}")
    assert caller["role"] == "ROLE_ADMIN"
    assert caller["id"].startswith("usr_")


def test_create_conversation_with_first_message(scenario):
    conv = scenario.created["conversation"]
    first = scenario.created["firstMessage"]
    assert conv["id"].startswith("conv_")
    assert conv["subject"] == {"kind": "listing", "externalId": "lst_abc", "title": "2021 Volvo FH 500"}
    labels = {p["userId"]: p["label"] for p in conv["participants"]}
    assert labels == {scenario.buyer_id: "buyer", scenario.seller_id: "seller"}
    assert conv["participating"] is True
    assert conv["callerLabel"] == "buyer"
    assert first["id"].startswith("msg_")
    assert first["conversationId"] == conv["id"]
    assert first["senderId"] == scenario.buyer_id
    assert first["content"] == FIRST
    assert first["sequence"] == "1"
    assert conv["lastMessage"]["id"] == first["id"]


def test_seller_reply(scenario):
    reply = scenario.reply
    assert reply["id"].startswith("msg_")
    assert reply["conversationId"] == scenario.conversation_id
    assert reply["senderId"] == scenario.seller_id
    assert reply["content"] == REPLY
    assert reply["sequence"] == "2"


@pytest.mark.parametrize("who", ["buyer", "seller"])
def test_list_messages_in_order(scenario, who):
    listed = getattr(scenario, who).call(
        f"{MESSAGES}/ListMessages", {"conversation_id": scenario.conversation_id}
    )
    messages = listed["messages"]
    assert [m["content"] for m in messages] == [FIRST, REPLY]
    assert [m["senderId"] for m in messages] == [scenario.buyer_id, scenario.seller_id]
    assert [m["id"] for m in messages] == [
        scenario.created["firstMessage"]["id"],
        scenario.reply["id"],
    ]
    assert [m["sequence"] for m in messages] == ["1", "2"]
    assert listed["totalSize"] == "2"
    assert "nextPageToken" not in listed  # one page only: the token is empty


def test_mark_read_clears_the_unread_count(scenario):
    buyer = scenario.buyer
    before = buyer.call(f"{CONVERSATIONS}/GetUnreadCount", "{}")
    assert before == {"unreadCount": "1", "conversationsWithUnread": "1"}

    marked = buyer.call(f"{CONVERSATIONS}/MarkRead", {"conversation_id": scenario.conversation_id})
    assert marked.get("marked") == "1"
    assert marked.get("unreadCount", "0") == "0"  # zero is omitted, as grpcurl omits it

    after = buyer.call(f"{CONVERSATIONS}/GetUnreadCount", "{}")
    assert after.get("unreadCount", "0") == "0"
    assert after.get("conversationsWithUnread", "0") == "0"


def test_empty_content_is_invalid_argument(scenario):
    err = rpc_error(
        scenario.buyer.call,
        f"{MESSAGES}/SendMessage",
        {"conversation_id": scenario.conversation_id, "content": ""},
    )
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "content" in err.details()


@pytest.mark.parametrize("key", [None, "msk_not_a_real_key"])
def test_missing_or_bad_key_is_unauthenticated(server, key):
    with Reflector(server.target, key) as stranger:
        err = rpc_error(stranger.call, f"{CONVERSATIONS}/GetUnreadCount", "{}")
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED


def test_outsider_gets_not_found(server, admin, scenario):
    """A member who does not take part in the conversation cannot tell it exists."""
    _, key = create_member(admin, "Olga Outsider", "olga@example.com")
    with Reflector(server.target, key) as outsider:
        for method, body in [
            (f"{MESSAGES}/ListMessages", {"conversation_id": scenario.conversation_id}),
            (f"{CONVERSATIONS}/GetConversation", {"id": scenario.conversation_id}),
            (f"{MESSAGES}/SendMessage", {"conversation_id": scenario.conversation_id, "content": "hi"}),
        ]:
            assert rpc_error(outsider.call, method, body).code() == grpc.StatusCode.NOT_FOUND, method


def test_subscribe_replays_from_the_start_in_cursor_order(scenario):
    events = scenario.buyer.take(f"{EVENTS}/Subscribe", '{"after": "0"}', count=3)
    assert [e["type"] for e in events] == [
        "EVENT_TYPE_CONVERSATION_CREATED",
        "EVENT_TYPE_MESSAGE_CREATED",
        "EVENT_TYPE_MESSAGE_CREATED",
    ]
    cursors = [e["cursor"] for e in events]
    assert len(set(cursors)) == len(cursors), cursors
    assert all(e["conversationId"] == scenario.conversation_id for e in events)
    assert events[0]["conversation"]["id"] == scenario.conversation_id
    assert [e["message"]["content"] for e in events[1:]] == [FIRST, REPLY]
    assert [e["actorId"] for e in events] == [
        scenario.buyer_id,
        scenario.buyer_id,
        scenario.seller_id,
    ]


def test_subscribe_goes_live_and_resumes(scenario):
    buyer = scenario.buyer
    live = buyer.stream(f"{EVENTS}/Subscribe", "{}")
    try:
        # Without `after`: live events only, starting with a heartbeat carrying the cursor.
        heartbeat = to_json(next(live))
        assert heartbeat["type"] == "EVENT_TYPE_HEARTBEAT"
        position = heartbeat["cursor"]

        sent = buyer.call(
            f"{MESSAGES}/SendMessage",
            {"conversation_id": scenario.conversation_id, "content": "Saturday works."},
        )
        event = to_json(next(live))
        while event["type"] == "EVENT_TYPE_HEARTBEAT":
            event = to_json(next(live))
        assert event["type"] == "EVENT_TYPE_MESSAGE_CREATED"
        assert event["message"]["id"] == sent["id"]
        assert event["cursor"] != position
    finally:
        live.cancel()

    # Resuming from the heartbeat's cursor replays exactly what came after it.
    resumed = buyer.take(f"{EVENTS}/Subscribe", {"after": position}, count=1)
    assert resumed[0]["cursor"] == event["cursor"]
    assert resumed[0]["message"]["id"] == sent["id"]



@pytest.mark.parametrize(
    "method, body, names",
    [
        # Not protobuf at all: a field tag with wire type 6.
        (f"/{ADMIN}/GetCaller", b"\x0e", None),
        # SendMessageRequest.content (field 3) holding bytes that are not UTF-8.
        (f"/{MESSAGES}/SendMessage", b"\x1a\x01\xff", "SendMessageRequest.content"),
        # CreateConversationRequest.request_id (field 5) holding the same.
        (f"/{CONVERSATIONS}/CreateConversation", b"\x2a\x01\xff", "CreateConversationRequest.request_id"),
    ],
)
def test_a_request_body_that_does_not_decode_is_the_clients_fault(server, method, body, names):
    """INVALID_ARGUMENT with prost's words, not INTERNAL: a retry will never help."""
    with grpc.insecure_channel(server.target) as channel:
        call = channel.unary_unary(method)
        with pytest.raises(grpc.RpcError) as raised:
            call(body, metadata=[("authorization", f"Bearer {server.admin_key}")], timeout=10)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT, raised.value.details()
    assert raised.value.details().startswith("the request body failed to decode"), raised.value.details()
    if names:
        assert names in raised.value.details(), raised.value.details()


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field."""
    length, varint = len(payload), b""
    while True:
        byte, length = length & 0x7F, length >> 7
        varint += bytes([byte | (0x80 if length else 0)])
        if not length:
            break
    return bytes([number << 3 | 2]) + varint + payload


def test_a_struct_nested_past_the_decoding_limit_is_refused_not_crashed(server):
    """content_attributes (a google.protobuf.Struct) nested 60 levels deep: each level is a
    Struct holding {"a": Value{struct_value: <the next level>}}, two messages deep."""
    nested = b""
    for _ in range(60):
        nested = _field(1, _field(1, b"a") + _field(2, _field(5, nested)))
    request = _field(3, b"hi") + _field(5, nested)
    with grpc.insecure_channel(server.target) as channel:
        call = channel.unary_unary(f"/{MESSAGES}/SendMessage")
        with pytest.raises(grpc.RpcError) as raised:
            call(request, metadata=[("authorization", f"Bearer {server.admin_key}")], timeout=10)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT, raised.value.details()
    assert "recursion limit" in raised.value.details(), raised.value.details()
