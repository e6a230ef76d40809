// Engine.IO over a raw WebSocket from the `ws` package, with permessage-deflate offered.
//
//   node deflate_ws.mjs URL MODE [PER_MESSAGE_DEFLATE_JSON]
//
// URL is the Engine.IO WebSocket URL (ws://.../?EIO=4&transport=websocket).
// MODE "echo": sends a large JSON text, a large binary and a small text, each with
// compress: true, and waits for their echoes. "bomb": sends 100 MB of zeros, compressed,
// and waits for the server to close. The client's option (default true) may be given as
// JSON. Prints ONE line of JSON:
//   {"ok", "extensions" (the 101's Sec-WebSocket-Extensions), "frames" (every data frame
//    received: opcode, rsv1, length on the wire), "sent" (message bytes), "bytesWritten",
//    "bytesRead", "echoes", "closeCode", "error"?}
import WebSocket from "ws";

const [url, mode, optionsJson] = process.argv.slice(2);
const perMessageDeflate = optionsJson ? JSON.parse(optionsJson) : true;
const result = { ok: false, mode, extensions: null, frames: [], sent: 0, echoes: [], closeCode: null };
let finished = false;
let socket = null;

function finish(extra) {
  if (finished) return;
  finished = true;
  clearTimeout(guard);
  Object.assign(result, extra, {
    bytesWritten: socket ? socket.bytesWritten : null,
    bytesRead: socket ? socket.bytesRead : null,
  });
  console.log(JSON.stringify(result));
  setTimeout(() => process.exit(0), 1_000).unref();
}

const guard = setTimeout(() => finish({ ok: false, error: "timed out" }), 40_000);

// Reads the headers of the server's (unmasked) frames as they arrive, to see RSV1.
let pending = Buffer.alloc(0);
let skip = 0;
function scan(chunk) {
  pending = Buffer.concat([pending, chunk]);
  for (;;) {
    if (skip) {
      const n = Math.min(skip, pending.length);
      pending = pending.subarray(n);
      skip -= n;
      if (skip) return;
    }
    if (pending.length < 2) return;
    let length = pending[1] & 0x7f;
    let offset = 2;
    if (length === 126) {
      if (pending.length < 4) return;
      length = pending.readUInt16BE(2);
      offset = 4;
    } else if (length === 127) {
      if (pending.length < 10) return;
      length = Number(pending.readBigUInt64BE(2));
      offset = 10;
    }
    const opcode = pending[0] & 0x0f;
    if (opcode < 8) result.frames.push({ opcode, rsv1: (pending[0] & 0x40) !== 0, length });
    pending = pending.subarray(offset);
    skip = length;
  }
}

const big = JSON.stringify({
  rows: Array.from({ length: 2000 }, (_, i) => ({ id: i, name: `user-${i}`, online: i % 3 === 0 })),
});
const outgoing = [
  "4" + big,
  Buffer.from(Array.from({ length: 100_000 }, (_, i) => i % 251)),
  "4small",
];

const ws = new WebSocket(url, { perMessageDeflate });
ws.on("upgrade", (response) => {
  result.extensions = response.headers["sec-websocket-extensions"] ?? null;
  socket = response.socket;
});
// Only once ws reads the socket (it does from "open" on): a listener of our own added
// earlier would start the stream flowing before ws listens, and ws would miss bytes.
ws.on("open", () => socket.on("data", scan));
ws.on("error", (error) => finish({ ok: false, error: String(error) }));
ws.on("close", (code) => {
  result.closeCode = code;
  finish({ ok: mode === "bomb" ? code === 1009 : result.echoes.length === outgoing.length });
});

let opened = false;
ws.on("message", (data, isBinary) => {
  if (!opened) {
    opened = true; // the Engine.IO open packet
    if (mode === "bomb") {
      const bomb = Buffer.alloc(100 * 1024 * 1024);
      result.sent = bomb.length;
      ws.send(bomb, { binary: true, compress: true });
      return;
    }
    for (const message of outgoing) {
      result.sent += Buffer.byteLength(message);
      ws.send(message, { binary: typeof message !== "string", compress: true });
    }
    return;
  }
  const expected = outgoing[result.echoes.length];
  const same = isBinary ? Buffer.compare(Buffer.from(data), expected) === 0 : data.toString() === expected;
  result.echoes.push({ binary: isBinary, length: data.length, same });
  if (result.echoes.length === outgoing.length) ws.close(1000);
});
