// Clients of one transport mode against several worker processes without sticky
// sessions: each joins a room and says which process serves it; then two broadcasts from
// one client to the room, and every client must hear the first exactly once before the
// second (one sender, one order: "second" ends the count without a wait).
//
//   node workers.mjs URL MODE COUNT   prints {"ok", "pids", "transports", "heard"}
import { createRequire } from "node:module";

const require = createRequire(`${process.cwd()}/`);
const { io } = require("socket.io-client");

const [url, mode, count] = process.argv.slice(2);
const TRANSPORTS = { polling: ["polling"], websocket: ["websocket"], upgrade: ["polling", "websocket"] };

function within(ms, promise, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

const sockets = [];
try {
  for (let i = 0; i < Number(count); i += 1) {
    const socket = io(url, { transports: TRANSPORTS[mode], forceNew: true, reconnection: false });
    socket.heard = [];
    socket.on("heard", (text) => socket.heard.push(text));
    socket.done = new Promise((resolve) => socket.on("heard", (text) => text === "second" && resolve()));
    socket.io.once("open", () => {
      socket.upgraded = new Promise((resolve) => socket.io.engine.once("upgrade", resolve));
    });
    sockets.push(socket);
    await within(10000, new Promise((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("connect_error", reject);
    }), `connect ${i}`);
  }
  if (mode === "upgrade") {
    await within(10000, Promise.all(sockets.map((s) => s.upgraded)), "the upgrades");
  }
  const pids = [];
  for (const socket of sockets) {
    await socket.timeout(10000).emitWithAck("join", "workers");
    // Several requests each: on polling they land on any worker.
    for (let n = 0; n < 3; n += 1) pids.push(await socket.timeout(10000).emitWithAck("pid"));
  }
  await sockets[0].timeout(10000).emitWithAck("shout", "workers", "first");
  await sockets[0].timeout(10000).emitWithAck("shout", "workers", "second");
  await within(15000, Promise.all(sockets.map((s) => s.done)), "the broadcasts");
  console.log(JSON.stringify({
    ok: true,
    pids,
    transports: sockets.map((s) => s.io.engine.transport.name),
    heard: sockets.map((s) => s.heard),
  }));
} catch (error) {
  console.log(JSON.stringify({ ok: false, error: String(error) }));
}
for (const socket of sockets) socket.disconnect();
process.exit(0);
