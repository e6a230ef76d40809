// Drives a server's Admin UI namespace with socket.io-client as the hosted UI does
// (https://admin.socket.io), while a plain client on "/" makes some activity, and
// prints what the admin socket received as one JSON line.
//
//   node admin_scenario.mjs '{"url": "http://127.0.0.1:PORT", "username": "admin",
//                              "password": "secret"}'
//
// The server's "/" namespace must answer "hello" (ack "hello <arg>") and emit "welcome"
// to the sender. Steps: bad credentials refused; login (session id received); a
// reconnection with the session id; the user connects, emits, is joined to "vip" by the
// admin, gets an announcement through the admin's "emit", leaves "vip", is
// disconnected by the admin; one server_stats is awaited.
import { io } from "socket.io-client";

const options = JSON.parse(process.argv[2]);
const GUARD_MS = options.guardMs ?? 20000;
const guard = setTimeout(() => {
  console.log(JSON.stringify({ ok: false, error: "timed out", received }));
  process.exit(1);
}, GUARD_MS);

const received = [];
const user = { received: [] };

// The first event of `log` from index `from` on that matches, as soon as there is one.
async function until(log, predicate, from = 0) {
  for (;;) {
    const found = log.slice(from).find((entry) => predicate(...entry));
    if (found) return found;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

function connectAdmin(auth) {
  const socket = io(options.url + (options.namespace ?? "/admin"), {
    auth,
    forceNew: true,
    reconnection: false,
  });
  return socket;
}

async function main() {
  // 1. Wrong credentials.
  const refused = connectAdmin({ username: options.username, password: "wrong" });
  const refusal = await new Promise((resolve) => refused.on("connect_error", resolve));
  refused.close();

  // 2. Login: the session id, the config, all sockets.
  const admin = connectAdmin({ username: options.username, password: options.password });
  admin.onAny((event, ...args) => received.push([event, ...args]));
  await new Promise((resolve, reject) => {
    admin.on("connect", resolve);
    admin.on("connect_error", reject);
  });
  const [, sessionId] = await until(received, (event) => event === "session");
  const [, configPayload] = await until(received, (event) => event === "config");
  const development = configPayload.supportedFeatures.includes("ALL_EVENTS");
  if (development) await until(received, (event) => event === "all_sockets");

  // 3. A reconnection with the session id only.
  const again = connectAdmin({ sessionId });
  const reused = await new Promise((resolve) => {
    again.on("connect", () => resolve(true));
    again.on("connect_error", () => resolve(false));
  });
  again.close();

  // 4. A user: connect, emit with an ack, get "welcome".
  let mark = received.length;
  const client = io(options.url, { forceNew: true, reconnection: false });
  client.onAny((event, ...args) => user.received.push([event, ...args]));
  await new Promise((resolve) => client.on("connect", resolve));
  user.id = client.id;
  const mine = (nsp, id) => nsp === "/" || nsp?.nsp === "/";
  if (development) await until(received, (e, arg) => e === "socket_connected" && mine(arg), mark);
  mark = received.length;
  user.ack = await client.emitWithAck("hello", "world");
  await until(user.received, (event) => event === "welcome");
  if (development) await until(received, (event) => event === "event_sent", mark);

  const features = configPayload.supportedFeatures;
  if (features.includes("JOIN")) {
    // 5. The admin's actions on the user.
    mark = received.length;
    admin.emit("join", "/", "vip");
    if (development) await until(received, (e, nsp, room) => e === "room_joined" && room === "vip", mark);
    admin.emit("emit", "/", "vip", "announce", "to the vip room");
    await until(user.received, (event) => event === "announce");
    mark = received.length;
    admin.emit("leave", "/", "vip");
    if (development) await until(received, (e, nsp, room) => e === "room_left" && room === "vip", mark);
  }
  mark = received.length;
  await until(received, (event) => event === "server_stats", mark);
  if (features.includes("DISCONNECT")) {
    mark = received.length;
    const gone = new Promise((resolve) => client.on("disconnect", resolve));
    admin.emit("_disconnect", "/", false);
    user.disconnectReason = await gone;
    if (development) await until(received, (event) => event === "socket_disconnected", mark);
  }
  client.close();
  admin.close();
  clearTimeout(guard);
  console.log(
    JSON.stringify({
      ok: true,
      refusal: { message: refusal.message, data: refusal.data ?? null },
      sessionId: typeof sessionId,
      reused,
      user,
      received,
    })
  );
}

main().catch((error) => {
  console.log(JSON.stringify({ ok: false, error: String(error), received }));
  process.exit(1);
});
