// A long-running socket.io-client that reports what happens to it, one JSON line each:
// {"event": "connect", "pid", "transport"}, {"event": "disconnect", "reason"},
// {"event": "ack", "n", "pid"}, {"event": "chunk", "n"} / {"event": "bad_chunk"}, ...
//
//   node watch.mjs URL TRANSPORTS [--emit-every MS] [--stream SIZE]
//
// It reconnects by itself (quickly: 200 ms, no randomisation) and exits when its stdin
// closes, so that it never outlives the test.
import { createRequire } from "node:module";
import { parseArgs } from "node:util";

const require = createRequire(`${process.cwd()}/`);
const { io } = require("socket.io-client");

const { values: options, positionals } = parseArgs({
  allowPositionals: true,
  options: { "emit-every": { type: "string" }, stream: { type: "string" } },
});
const [url, transports] = positionals;
const started = Date.now();
const report = (event) => console.log(JSON.stringify({ t: Date.now() - started, ...event }));

const socket = io(url, {
  transports: transports.split(","),
  reconnectionDelay: 200,
  reconnectionDelayMax: 500,
  randomizationFactor: 0,
  timeout: 5000,
  rejectUnauthorized: false,
});

socket.on("connect", async () => {
  let pid = null;
  try {
    pid = await socket.timeout(5000).emitWithAck("pid");
  } catch (error) {
    report({ event: "pid_failed", error: String(error) });
  }
  report({ event: "connect", pid, transport: socket.io.engine.transport.name });
  if (options.stream) socket.emit("stream", Number(options.stream));
});
socket.on("disconnect", (reason) => report({ event: "disconnect", reason }));
socket.on("connect_error", (error) => report({ event: "connect_error", message: error.message }));

const size = Number(options.stream || 0);
socket.on("chunk", (n, text) => {
  const expected = String(n % 10).repeat(size);
  if (text !== expected) report({ event: "bad_chunk", n, length: text.length });
  else if (n % 20 === 0) report({ event: "chunk", n });
});

if (options["emit-every"]) {
  let n = 0;
  setInterval(() => {
    if (!socket.connected) return;
    n += 1;
    const sent = n;
    socket.timeout(3000).emit("echo_pid", sent, (error, answer) => {
      report(error ? { event: "ack_timeout", n: sent } : { event: "ack", n: answer[0], pid: answer[1] });
    });
  }, Number(options["emit-every"]));
}

process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
