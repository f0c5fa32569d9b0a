// A new user's web app, as a browser runs it: clients generated from proto/ (protoc-gen-es),
// connect-web's grpc-web transport, fetch across origins to Missive. The query string gives
// the server's address, an admin key and the text to send
// (?server=http://127.0.0.1:PORT&key=msk_…&content=…). The page shows what each step got,
// one <li data-step="…"> each: "ok …" or "error <grpc code>: <grpc message>"; run.mjs reads
// the page, nothing else.
//
// Bundled by esbuild (tests/browser.rs): packages from target/browser-node/node_modules
// (NODE_PATH), generated code from target/browser-node/gen.

import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { AdminService } from "../../target/browser-node/gen/missive/v1/admin_pb.js";
import { ConversationService } from "../../target/browser-node/gen/missive/v1/conversations_pb.js";
import { EventService, EventType } from "../../target/browser-node/gen/missive/v1/events_pb.js";
import { MessageService } from "../../target/browser-node/gen/missive/v1/messages_pb.js";
import { Role } from "../../target/browser-node/gen/missive/v1/resources_pb.js";

const params = new URLSearchParams(location.search);
const server = params.get("server");
const adminKey = params.get("key");
const content = params.get("content");

/** Clients of every service that call as the user of `key`. */
function clientsFor(key) {
  const transport = createGrpcWebTransport({
    baseUrl: server,
    defaultTimeoutMs: 10_000,
    interceptors: [
      (next) => (request) => {
        request.header.set("authorization", `Bearer ${key}`);
        return next(request);
      },
    ],
  });
  return {
    admin: createClient(AdminService, transport),
    conversations: createClient(ConversationService, transport),
    messages: createClient(MessageService, transport),
    events: createClient(EventService, transport),
  };
}

function show(name, text) {
  const item = document.createElement("li");
  item.dataset.step = name;
  item.textContent = text;
  document.getElementById("steps").append(item);
}

/** e.g. "error InvalidArgument: content: must not be empty [details: google.rpc.BadRequest]" */
function describe(error) {
  const err = ConnectError.from(error);
  const details = err.details.map((detail) => detail.type ?? detail.desc?.typeName);
  const suffix = details.length > 0 ? ` [details: ${details.join(", ")}]` : "";
  return `error ${Code[err.code]}: ${err.rawMessage}${suffix}`;
}

/** Runs a step that must succeed; its result is shown as "ok …", a failure stops the page. */
async function step(name, run) {
  try {
    const [result, summary] = await run();
    show(name, `ok ${summary}`);
    return result;
  } catch (error) {
    show(name, describe(error));
    throw new Stopped(name);
  }
}

/** Runs a call that must fail, and shows how. */
async function failingStep(name, run) {
  try {
    await run();
    show(name, "ok (but an error was expected)");
  } catch (error) {
    show(name, describe(error));
  }
}

class Stopped extends Error {}

/** A Subscribe stream read in the background; `next(matches)` waits for a matching event. */
function openStream(events, request) {
  const abort = new AbortController();
  // No deadline for the stream: it stays open until `close`.
  const iterator = events.subscribe(request, { signal: abort.signal, timeoutMs: 0 })[Symbol.asyncIterator]();
  const received = [];
  let failure;
  let waiters = [];
  const notify = () => {
    const pending = waiters;
    waiters = [];
    pending.forEach((wake) => wake());
  };
  (async () => {
    try {
      for (;;) {
        const { done, value } = await iterator.next();
        if (done) {
          failure = new ConnectError("the stream ended", Code.Unknown);
          break;
        }
        received.push(value);
        notify();
      }
    } catch (error) {
      failure = error;
    }
    notify();
  })();
  return {
    async next(matches, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = received.find(matches);
        if (found) return found;
        if (failure) throw failure;
        const left = deadline - Date.now();
        if (left <= 0) {
          throw new ConnectError(`no such event within ${timeoutMs} ms (got ${received.length})`, Code.DeadlineExceeded);
        }
        await new Promise((wake) => {
          waiters.push(wake);
          setTimeout(wake, left);
        });
      }
    },
    close() {
      abort.abort();
    },
  };
}

async function main() {
  const admin = clientsFor(adminKey);

  await step("caller", async () => {
    const user = await admin.admin.getCaller({});
    return [user, `${user.id} ${Role[user.role]}`];
  });

  const [buyer, seller] = await step("users", async () => {
    const buyer = await admin.admin.createUser({ user: { role: Role.MEMBER, displayName: "Bob Buyer" } });
    const seller = await admin.admin.createUser({ user: { role: Role.MEMBER, displayName: "Sue Seller" } });
    return [[buyer, seller], `buyer=${buyer.id} seller=${seller.id}`];
  });

  // What a product's backend does for its web app: a short-lived user token per user, so
  // that the page never holds an API key. (Here the page asks itself, with the admin key.)
  const [buyerApi, sellerApi] = await step("tokens", async () => {
    const buyerToken = await admin.admin.createUserToken({ userId: buyer.id, ttl: { seconds: 600n } });
    const sellerToken = await admin.admin.createUserToken({ userId: seller.id });
    const shown = (minted) => `${minted.token.split(".").length}-part JWT until ${minted.expireTime.seconds}`;
    return [
      [clientsFor(buyerToken.token), clientsFor(sellerToken.token)],
      `buyer=${shown(buyerToken)} seller=${shown(sellerToken)}`,
    ];
  });

  const conversation = await step("conversation", async () => {
    const { conversation } = await buyerApi.conversations.createConversation({
      participants: [
        { userId: buyer.id, label: "buyer" },
        { userId: seller.id, label: "seller" },
      ],
      subject: { kind: "listing", externalId: "lst_abc", title: "2021 Volvo FH 500" },
    });
    return [conversation, conversation.id];
  });

  // The seller's app listens for live events from here on: the stream starts with a
  // heartbeat carrying the current cursor.
  const stream = await step("subscribe", async () => {
    const stream = openStream(sellerApi.events, {});
    const heartbeat = await stream.next((event) => event.type === EventType.HEARTBEAT, 10_000);
    return [stream, `${EventType[heartbeat.type]} at cursor ${heartbeat.cursor}`];
  });

  try {
    const sent = await step("send", async () => {
      const message = await buyerApi.messages.sendMessage({ conversationId: conversation.id, content });
      return [message, `${message.id} #${message.sequence} ${message.content}`];
    });

    await step("list", async () => {
      const { messages, totalSize } = await sellerApi.messages.listMessages({ conversationId: conversation.id });
      const lines = messages.map((message) => `${message.id} #${message.sequence} ${message.content}`);
      return [messages, `${totalSize} message(s): ${lines.join(" | ")}`];
    });

    await step("event", async () => {
      const event = await stream.next(
        (event) => event.type === EventType.MESSAGE_CREATED &&
          event.payload.case === "message" &&
          event.payload.value.id === sent.id,
        10_000,
      );
      const message = event.payload.value;
      return [event, `${EventType[event.type]} ${message.id} at cursor ${event.cursor} ${message.content}`];
    });
  } finally {
    stream.close();
  }

  // Errors must reach the page with their status: across origins only the headers the server
  // exposes are readable, and an error answered at once carries its status in headers.
  await failingStep("not-found", () =>
    sellerApi.conversations.getConversation({ id: "conv_00000000000000000000000000000000" }),
  );
  await failingStep("invalid", () =>
    buyerApi.messages.sendMessage({ conversationId: conversation.id, content: "" }),
  );
  await failingStep("unauthenticated", () => clientsFor("msk_not_a_key").admin.getCaller({}));
}

main().then(
  () => {
    document.getElementById("done").textContent = "passed";
  },
  (error) => {
    const where = error instanceof Stopped ? error.message : `an exception: ${error}`;
    document.getElementById("done").textContent = `stopped at ${where}`;
  },
);
