// One socket.io-client socket that reconnects by itself, for the recovery tests.
//
//   node recovery_client.mjs URL OPTS_JSON
//
// It records every connect (id, recovered), connect error and disconnect, and every
// event with all its arguments (the recovery offset included, as the client's
// listeners get it). An event that asks for an acknowledgement is acknowledged with the
// socket's id. For each "tick" event it emits "seen" with the tick's first
// argument, so the server can tell what arrived. It exits after the event "end", or
// after OPTS.guardMs, printing ONE line of JSON:
//   {"ok", "connects": [{"id", "recovered"}], "events": [[name, ...args]],
//    "connectErrors": [message], "disconnects": [reason]}
import { io } from "socket.io-client";

const url = process.argv[2];
const opts = JSON.parse(process.argv[3] || "{}");
const guardMs = opts.guardMs ?? 20000;
delete opts.guardMs;
const report = { ok: false, connects: [], events: [], connectErrors: [], disconnects: [] };

function finish(ok) {
  report.ok = ok;
  console.log(JSON.stringify(report));
  process.exit(0);
}

const socket = io(url, { forceNew: true, reconnectionDelay: 50, reconnectionDelayMax: 200, ...opts });
socket.on("connect", () => report.connects.push({ id: socket.id, recovered: socket.recovered }));
socket.on("connect_error", (err) => report.connectErrors.push(err.message));
socket.on("disconnect", (reason) => report.disconnects.push(reason));
socket.onAny((event, ...args) => {
  if (typeof args[args.length - 1] === "function") args.pop()(socket.id); // ack: our id
  report.events.push([event, ...args]);
  if (event === "tick") socket.emit("seen", args[0]);
  if (event === "end") finish(true);
});
setTimeout(() => finish(false), guardMs);
