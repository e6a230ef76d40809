// Long-polling echo load: CLIENTS polling-only socket.io-clients, each sending `echo`
// with an acknowledgement, one after the other, for SECONDS; prints {"acks", "seconds"}.
//
//   node polling_echo.mjs URL CLIENTS SECONDS   (cwd: tests/js, for node_modules)
import { createRequire } from "node:module";

const require = createRequire(`${process.cwd()}/`);
const { io } = require("socket.io-client");

const [url, clients, seconds] = process.argv.slice(2);
const sockets = [];
for (let i = 0; i < Number(clients); i += 1) {
  const socket = io(url, { transports: ["polling"], forceNew: true, reconnection: false });
  sockets.push(socket);
  await new Promise((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("connect_error", reject);
  });
}
let acks = 0;
const end = Date.now() + Number(seconds) * 1000;
await Promise.all(sockets.map(async (socket) => {
  while (Date.now() < end) {
    await socket.timeout(10000).emitWithAck("echo", "x".repeat(32));
    acks += 1;
  }
}));
console.log(JSON.stringify({ acks, seconds: Number(seconds) }));
for (const socket of sockets) socket.disconnect();
process.exit(0);
