// Socket.IO clients (the real socket.io-client), driven by the tests over stdin/stdout.
//
// One JSON command per line on stdin, {"id": 1, "cmd": "connect", ...}; each is answered
// with {"id": 1, "result": ...} or {"id": 1, "error": "..."}. What the clients receive is
// reported as it happens: {"event": {"client", "event", "args"}} and
// {"disconnect": {"client", "reason"}}. An event that asks for an acknowledgement is
// acknowledged with the client's name. Binary travels as {"$bin": "<hex>"}.
//
// Commands:
//   connect {client, url, namespace?, auth?}       -> {sid}
//   emit {client, event, args}                      -> the server's ack, if any
//   disconnect {client}
import { serveCommands, write } from "./lines.mjs";
import { io } from "socket.io-client";

const clients = new Map();

const toJson = (value) => {
  if (Buffer.isBuffer(value) || value instanceof ArrayBuffer || ArrayBuffer.isView(value)) {
    return { $bin: Buffer.from(value).toString("hex") };
  }
  if (Array.isArray(value)) return value.map(toJson);
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, toJson(v)]));
  }
  return value;
};

const fromJson = (value) => {
  if (Array.isArray(value)) return value.map(fromJson);
  if (value && typeof value === "object") {
    const keys = Object.keys(value);
    if (keys.length === 1 && keys[0] === "$bin") return Buffer.from(value.$bin, "hex");
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, fromJson(v)]));
  }
  return value;
};


const commands = {
  connect({ client, url, namespace = "/", auth = {} }) {
    return new Promise((resolve, reject) => {
      const socket = io(url + namespace, {
        auth,
        transports: ["websocket"],
        reconnection: false,
        forceNew: true,
        timeout: 5000,
      });
      clients.set(client, socket);
      socket.onAny((event, ...args) => {
        const ack = typeof args[args.length - 1] === "function" ? args.pop() : null;
        write({ event: { client, event, args: toJson(args) } });
        if (ack) ack(client);
      });
      socket.on("disconnect", (reason) => write({ disconnect: { client, reason } }));
      socket.once("connect", () => resolve({ sid: socket.id }));
      socket.once("connect_error", (err) => reject(err));
    });
  },
  emit({ client, event, args = [] }) {
    return clients.get(client).timeout(5000).emitWithAck(event, ...fromJson(args));
  },
  disconnect({ client }) {
    clients.get(client).disconnect();
    return null;
  },
};

serveCommands(commands, {
  toJson,
  describe: (err) => String(err && err.message ? err.message : err),
  onClose: () => {
    for (const socket of clients.values()) socket.disconnect();
    process.exit(0);
  },
});
write({ ready: true });
