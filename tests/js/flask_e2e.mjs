// Drive the Flask application of tests/flask_ext/app.py with the real socket.io-client.
//
//   node flask_e2e.mjs URL
//
// Logs in over HTTP, then uses the session cookie on Socket.IO (polling, then upgraded to
// WebSocket): Flask-Login's current_user and the session in handlers, acks both ways, a
// tuple of arguments, rooms filled by an HTTP route, a class-based namespace, a refused
// connection. Every wait is bounded. Prints ONE line of JSON: {"ok", "error"?, ...results}.
import { io } from "socket.io-client";

const url = process.argv[2];
const GUARD_MS = 20000;
const results = {};

function within(promise, what, ms = 5000) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function once(socket, event) {
  return within(new Promise((resolve) => socket.once(event, (...args) => resolve(args))), event);
}

function ackOf(socket, event, ...args) {
  // The acknowledgement's arguments, all of them (emitWithAck keeps only the first).
  return within(new Promise((resolve, reject) => {
    socket.timeout(5000).emit(event, ...args, (err, ...answer) => (err ? reject(err) : resolve(answer)));
  }), `the ack of ${event}`);
}

async function login() {
  const response = await fetch(`${url}/login/alice`);
  return response.headers.getSetCookie().map((c) => c.split(";")[0]).join("; ");
}

async function main() {
  const cookie = await login();
  const options = { forceNew: true, reconnection: false, extraHeaders: { Cookie: cookie } };

  const socket = io(url, { ...options, auth: { token: "t" } });
  const [hello] = await once(socket, "hello");
  results.hello = hello;
  if (socket.io.engine.transport.name !== "websocket") {
    await within(new Promise((resolve) => socket.io.engine.once("upgrade", resolve)), "upgrade");
  }
  results.transport = socket.io.engine.transport.name;

  results.whoami = (await ackOf(socket, "whoami"))[0];
  results.sid = socket.id;
  await ackOf(socket, "session set", "color", "green");
  results.sessionAfterSet = (await ackOf(socket, "session get", "color"))[0];

  const pairEvent = once(socket, "pair");
  results.pairAck = await ackOf(socket, "pair");
  results.pairEvent = await pairEvent;

  results.rooms = (await ackOf(socket, "join", "news"))[0];
  const notice = once(socket, "notice");
  results.notifyStatus = (await fetch(`${url}/notify/news/hello`)).status;
  results.notice = (await notice)[0];

  socket.on("question", (question, ack) => ack("because", question.length));
  const answered = once(socket, "answered");
  socket.emit("ask", "why?");
  results.answered = (await answered)[0];

  const chat = io(`${url}/chat`, { ...options, auth: { k: 1 } });
  results.welcome = (await once(chat, "welcome"))[0];
  results.chatSid = chat.id;
  results.chatEcho = await ackOf(chat, "echo", 1, "a");
  results.chatWhoami = (await ackOf(chat, "whoami"))[0];
  chat.disconnect();

  const refused = io(url, { ...options, query: { refuse: "raise" } });
  const [error] = await once(refused, "connect_error");
  results.refused = { message: error.message, data: error.data };
  refused.close();

  socket.disconnect();
  results.ok = true;
}

const guard = setTimeout(() => {
  console.log(JSON.stringify({ ...results, ok: false, error: "guard timeout" }));
  process.exit(1);
}, GUARD_MS);

main()
  .catch((error) => {
    results.ok = false;
    results.error = String(error && error.stack ? error.stack : error);
  })
  .finally(() => {
    clearTimeout(guard);
    console.log(JSON.stringify(results));
    // No process.exit(): Node ends once the clients' last requests (their close packets)
    // are done, so the server sees every session end.
  });
