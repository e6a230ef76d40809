// Per transport mode, two socket.io-client connections: an echo with an acknowledgement
// (text, binary, an object) and a broadcast to a room they both joined.
//
//   node scenario.mjs URL MODE...     (MODE: polling | websocket | upgrade)
//
// Run from tests/js (node_modules); prints one JSON line: {"ok", "results": [...]}.
import { createRequire } from "node:module";

const require = createRequire(`${process.cwd()}/`);
const { io } = require("socket.io-client");

const [url, ...modes] = process.argv.slice(2);
const TRANSPORTS = {
  polling: ["polling"],
  websocket: ["websocket"],
  upgrade: ["polling", "websocket"],
};

function within(ms, promise, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function connect(mode) {
  const socket = io(url, {
    transports: TRANSPORTS[mode],
    forceNew: true,
    reconnection: false,
    timeout: 5000,
    rejectUnauthorized: false,
  });
  socket.io.once("open", () => {
    socket.first = socket.io.engine.transport.name;
    socket.upgraded = new Promise((resolve) => socket.io.engine.once("upgrade", resolve));
  });
  return within(
    5000,
    new Promise((resolve, reject) => {
      socket.once("connect", () => resolve(socket));
      socket.once("connect_error", reject);
    }),
    `connect (${mode})`,
  );
}

function upgraded(socket) {
  return within(5000, socket.upgraded, "upgrade");
}

async function run(mode) {
  const a = await connect(mode);
  const b = await connect(mode);
  try {
    const first = a.first;
    if (mode === "upgrade") await Promise.all([upgraded(a), upgraded(b)]);
    const room = `room-${mode}`;
    await a.timeout(5000).emitWithAck("join", room);
    await b.timeout(5000).emitWithAck("join", room);
    const echo = await a.timeout(5000).emitWithAck("echo", "héllo ✓", Buffer.from([0, 1, 255]), { n: 1 });
    const heard = within(5000, new Promise((resolve) => b.once("heard", (text) => resolve(text))), "broadcast");
    const sent = await a.timeout(5000).emitWithAck("shout", room, "to the room");
    return {
      mode,
      first,
      final: a.io.engine.transport.name,
      echo: [echo[0], [...echo[1]], echo[2]],
      sent,
      heard: await heard,
    };
  } finally {
    a.disconnect();
    b.disconnect();
  }
}

const results = [];
try {
  for (const mode of modes) results.push(await run(mode));
  console.log(JSON.stringify({ ok: true, results }));
} catch (error) {
  console.log(JSON.stringify({ ok: false, error: String(error), results }));
}
process.exit(0);
