// Talk to an Engine.IO echo server with the real engine.io-client and report what happened.
//
//   node eio_echo.mjs URL PATH MODE
//
// MODE is "polling" (long-polling only), "websocket" (WebSocket only) or "upgrade"
// (polling, then the upgrade to WebSocket). Sends text and binary messages, checks that
// each comes back unchanged, closes, and prints ONE line of JSON:
//   {"ok": bool, "mode", "openTransport", "finalTransport", "upgraded", "echoes": [...],
//    "closeReason", "error"?}
import { Socket } from "engine.io-client";

const [url, path, mode] = process.argv.slice(2);
const TRANSPORTS = { polling: ["polling"], websocket: ["websocket"], upgrade: ["polling", "websocket"] };
if (!url || !path || !TRANSPORTS[mode]) {
  console.log(JSON.stringify({ ok: false, error: `usage: eio_echo.mjs URL PATH MODE, got ${process.argv.slice(2)}` }));
  process.exit(2);
}

const outgoing = [
  "hello",
  "unicode é ✓ 🚀",
  Buffer.from([0, 1, 2, 253, 254, 255]),
  "x".repeat(100_000),
  Buffer.alloc(70_000, 7),
];
const result = { ok: false, mode, openTransport: null, finalTransport: null, upgraded: false, echoes: [] };
let finished = false;

function finish(extra) {
  if (finished) return;
  finished = true;
  clearTimeout(guard);
  Object.assign(result, extra);
  console.log(JSON.stringify(result));
  // Let the client's last requests (the CLOSE packet's POST) leave before Node exits;
  // the unref'd timer only ends a process that something else keeps alive.
  setTimeout(() => process.exit(0), 2_000).unref();
}

const guard = setTimeout(() => finish({ ok: false, error: "timed out" }), 15_000);

function same(sent, got) {
  if (typeof sent === "string") return sent === got;
  return Buffer.isBuffer(got) || got instanceof ArrayBuffer || ArrayBuffer.isView(got)
    ? Buffer.compare(sent, Buffer.from(got)) === 0
    : false;
}

function describe(data) {
  return typeof data === "string"
    ? { type: "text", length: data.length }
    : { type: "binary", length: Buffer.from(data).length };
}

const socket = new Socket(url, { path, transports: TRANSPORTS[mode], upgrade: mode === "upgrade" });
let received = 0;

function sendAll() {
  for (const message of outgoing) socket.send(message);
}

socket.on("open", () => {
  result.openTransport = socket.transport.name;
  if (mode !== "upgrade") sendAll();
});
socket.on("upgrade", (transport) => {
  result.upgraded = true;
  result.upgradedTo = transport.name;
  sendAll();
});
socket.on("message", (data) => {
  const sent = outgoing[received++];
  result.echoes.push({ ...describe(data), same: same(sent, data) });
  if (received === outgoing.length) {
    result.finalTransport = socket.transport.name;
    socket.close();
  }
});
socket.on("close", (reason, description) => {
  const allSame = result.echoes.length === outgoing.length && result.echoes.every((e) => e.same);
  finish({
    ok: allSame && reason === "forced close",
    closeReason: reason,
    closeDescription: description ? String(description.message || description) : null,
  });
});
socket.on("error", (error) => finish({ ok: false, error: String(error && (error.message || error)) }));
