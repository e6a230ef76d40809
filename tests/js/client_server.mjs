// The reference Socket.IO server (socket.io v4) that the Python client's tests talk to.
//
//   node client_server.mjs --port 0 [--ping-interval ms] [--ping-timeout ms]
//                          [--cert file --key file] [--parser msgpack]
//                          [--per-message-deflate]
//
// Prints "listening <port>" on stdout once it accepts connections. Exits on SIGTERM,
// or when its stdin closes (so that it never outlives the test process).
import { readFileSync } from "node:fs";
import { createServer as createHttpServer } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { parseArgs } from "node:util";
import { Server } from "socket.io";

const { values: args } = parseArgs({
  options: {
    port: { type: "string", default: "0" },
    "ping-interval": { type: "string", default: "25000" },
    "ping-timeout": { type: "string", default: "20000" },
    cert: { type: "string" },
    key: { type: "string" },
    parser: { type: "string", default: "json" },
    "per-message-deflate": { type: "boolean", default: false },
  },
});

const httpServer = args.cert
  ? createHttpsServer({ cert: readFileSync(args.cert), key: readFileSync(args.key) })
  : createHttpServer();

// Every TCP connection, so that "drop_all" can cut them without a goodbye.
const connections = new Set();
httpServer.on("connection", (tcp) => {
  connections.add(tcp);
  tcp.on("close", () => connections.delete(tcp));
});

const io = new Server(httpServer, {
  pingInterval: Number(args["ping-interval"]),
  pingTimeout: Number(args["ping-timeout"]),
  perMessageDeflate: args["per-message-deflate"],
  ...(args.parser === "msgpack"
    ? { parser: (await import("socket.io-msgpack-parser")).default }
    : {}),
});

// What the "record" event received, across connections (see "records").
const records = [];
// How many times each "flaky" key was tried.
const tries = new Map();

function lastIsFunction(list) {
  return list.length > 0 && typeof list[list.length - 1] === "function";
}

io.on("connection", (socket) => {
  let pongs = 0;
  socket.conn.on("packet", (packet) => {
    if (packet.type === "pong") pongs += 1;
  });

  // Acknowledges with the arguments it got (binary included).
  socket.on("echo", (...list) => {
    if (lastIsFunction(list)) list.pop()(...list);
  });
  // Emits the event named by the first argument with the remaining ones, then acks.
  socket.on("emit_back", (event, ...list) => {
    const ack = lastIsFunction(list) ? list.pop() : null;
    socket.emit(event, ...list);
    if (ack) ack();
  });
  // Asks the client (an emit with an ack) and acknowledges with the client's answer.
  socket.on("ask", (event, ...list) => {
    const ack = list.pop();
    socket.timeout(5000).emit(event, ...list, (err, ...answers) => {
      ack(err ? { error: err.message } : answers);
    });
  });
  socket.on("message", (data, ack) => {
    if (typeof ack === "function") ack(data);
  });
  socket.on("auth", (ack) => ack(socket.handshake.auth));
  socket.on("whoami", (ack) => ack(socket.nsp.name, socket.id, socket.conn.id));
  socket.on("record", (value) => records.push(value));
  socket.on("records", (ack) => ack(records));
  // Acknowledges only from try number failures + 1 of a key on (for emits with retries).
  socket.on("flaky", (key, failures, ack) => {
    const count = (tries.get(key) || 0) + 1;
    tries.set(key, count);
    if (count > failures) ack(count);
  });
  // An Engine.IO message that is not a valid Socket.IO packet: "parse error".
  socket.on("garbage", () => socket.conn.write("2{not json"));
  socket.on("transport", (ack) => ack(socket.conn.transport.name));
  socket.on("pongs", (ack) => ack(pongs));
  // The server disconnects the namespace: the client hears "io server disconnect".
  socket.on("disconnect_me", () => socket.disconnect());
  // Every TCP connection is cut: the client sees the connection drop.
  socket.on("drop_all", () => {
    for (const tcp of connections) tcp.destroy();
  });
  // This connection gets no more pings (and no longer expects pongs).
  socket.on("stop_pings", (ack) => {
    const conn = socket.conn;
    const sendPacket = conn.sendPacket.bind(conn);
    conn.sendPacket = (type, ...rest) => {
      if (type !== "ping") sendPacket(type, ...rest);
    };
    clearTimeout(conn.pingTimeoutTimer);
    conn.resetPingTimeout = () => {};
    ack();
  });
});

io.of("/other").on("connection", (socket) => {
  socket.on("echo", (...list) => {
    if (lastIsFunction(list)) list.pop()(...list);
  });
  socket.on("whoami", (ack) => ack(socket.nsp.name, socket.id, socket.conn.id));
});

io.of("/refused").use((socket, next) => {
  const error = new Error("not allowed");
  error.data = { reason: "nope", code: 42 };
  next(error);
});

io.of("/private")
  .use((socket, next) => {
    if (socket.handshake.auth && socket.handshake.auth.token === "secret") next();
    else next(new Error("bad token"));
  })
  .on("connection", (socket) => {
    socket.on("message", (data, ack) => {
    if (typeof ack === "function") ack(data);
  });
  socket.on("auth", (ack) => ack(socket.handshake.auth));
  socket.on("whoami", (ack) => ack(socket.nsp.name, socket.id, socket.conn.id));
  socket.on("record", (value) => records.push(value));
  socket.on("records", (ack) => ack(records));
  // Acknowledges only from try number failures + 1 of a key on (for emits with retries).
  socket.on("flaky", (key, failures, ack) => {
    const count = (tries.get(key) || 0) + 1;
    tries.set(key, count);
    if (count > failures) ack(count);
  });
  // An Engine.IO message that is not a valid Socket.IO packet: "parse error".
  socket.on("garbage", () => socket.conn.write("2{not json"));
  });

httpServer.listen(Number(args.port), "127.0.0.1", () => {
  process.stdout.write(`listening ${httpServer.address().port}\n`);
});

function stop() {
  io.close();
  for (const tcp of connections) tcp.destroy();
  process.exit(0);
}
process.on("SIGTERM", stop);
process.stdin.on("end", stop);
process.stdin.resume();
