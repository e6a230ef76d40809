// WebSocket-only clients against several worker processes: connect one at a time until
// two different processes answered (or MAX clients), each with an echo acknowledged.
//
//   node spread.mjs URL MAX     prints {"ok", "pids": [...], "echoes": n}
import { createRequire } from "node:module";

const require = createRequire(`${process.cwd()}/`);
const { io } = require("socket.io-client");

const [url, max] = process.argv.slice(2);
const pids = [];
const sockets = [];
let echoes = 0;
try {
  for (let i = 0; i < Number(max) && new Set(pids).size < 2; i += 1) {
    const socket = io(url, { transports: ["websocket"], forceNew: true, reconnection: false });
    sockets.push(socket);
    await new Promise((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("connect_error", reject);
    });
    pids.push(await socket.timeout(5000).emitWithAck("pid"));
    const [echo] = await socket.timeout(5000).emitWithAck("echo", `client ${i}`);
    if (echo === `client ${i}`) echoes += 1;
  }
  console.log(JSON.stringify({ ok: true, pids, echoes }));
} catch (error) {
  console.log(JSON.stringify({ ok: false, error: String(error), pids, echoes }));
}
for (const socket of sockets) socket.disconnect();
process.exit(0);
