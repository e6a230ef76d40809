// The Node reference server (socket.io + @socket.io/redis-adapter, default pub/sub mode)
// and the Node emitter (@socket.io/redis-emitter), in one Redis cluster with geventsio
// servers, driven by the tests over stdin/stdout.
//
//   node node_server.mjs REDIS_URL KEY NAME
//
// Prints {"port": N} once listening on 127.0.0.1, then answers one JSON command per line
// ({"id", "cmd", ...} -> {"id", "result"} or {"id", "error"}). Clients connect with
// auth {name, rooms}: the socket joins the rooms and socket.data becomes {name}. The
// server-side event "whoami" is answered with {node: NAME, args}; "record" is recorded.
// Binary travels as {"$bin": "<hex>"}.
import { createServer } from "node:http";
import { serveCommands, write } from "./lines.mjs";
import { Server } from "socket.io";
import { createAdapter } from "@socket.io/redis-adapter";
import { Emitter } from "@socket.io/redis-emitter";
import { createClient } from "redis";

const [url, key, name] = process.argv.slice(2);

const toJson = (value) => {
  if (Buffer.isBuffer(value) || value instanceof ArrayBuffer || ArrayBuffer.isView(value)) {
    return { $bin: Buffer.from(value).toString("hex") };
  }
  if (value instanceof Set) return [...value].sort();
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


const pubClient = createClient({ url });
const subClient = pubClient.duplicate();
const emitterClient = pubClient.duplicate();
await Promise.all([pubClient.connect(), subClient.connect(), emitterClient.connect()]);

const httpServer = createServer();
const io = new Server(httpServer, { adapter: createAdapter(pubClient, subClient, { key }) });
const emitter = new Emitter(emitterClient, { key });
const serverSideEvents = [];

for (const nsp of [io.of("/"), io.of("/admin")]) {
  nsp.on("connection", (socket) => {
    const auth = socket.handshake.auth || {};
    socket.data.name = auth.name;
    socket.join(auth.rooms || []);
  });
  nsp.on("whoami", (...args) => {
    const ack = typeof args[args.length - 1] === "function" ? args.pop() : null;
    if (ack) ack({ node: name, args: toJson(args) });
  });
  nsp.on("record", (...args) => serverSideEvents.push([nsp.name, ...toJson(args)]));
}

const select = (target, { to = [], except = [] }) => {
  let operator = target;
  if (to.length) operator = operator.to(to);
  if (except.length) operator = operator.except(except);
  return operator;
};

const commands = {
  emit: (c) => select(io.of(c.namespace || "/"), c).emit(c.event, ...fromJson(c.args || [])),
  async call(c) {
    try {
      const responses = await select(io.of(c.namespace || "/"), c)
        .timeout(c.timeout * 1000)
        .emitWithAck(c.event, ...fromJson(c.args || []));
      return { timeout: false, responses };
    } catch (err) {
      return { timeout: true, responses: err.responses || [] };
    }
  },
  async fetch(c) {
    const sockets = await select(io.of(c.namespace || "/"), c).fetchSockets();
    return sockets.map((s) => ({ id: s.id, rooms: [...s.rooms].sort(), data: s.data }));
  },
  sockets_join: (c) => select(io.of(c.namespace || "/"), c).socketsJoin(c.rooms),
  disconnect: (c) => select(io.of(c.namespace || "/"), c).disconnectSockets(!!c.close),
  async server_side_call(c) {
    try {
      const replies = await io.of(c.namespace || "/").serverSideEmitWithAck(c.event, ...(c.args || []));
      return { timeout: false, replies };
    } catch (err) {
      return { timeout: true, replies: err.responses || [] };
    }
  },
  server_side_events: () => serverSideEvents,
  emitter(c) {
    let operator = emitter.of(c.namespace || "/");
    if (c.to && c.to.length) operator = operator.to(c.to);
    if (c.except && c.except.length) operator = operator.except(c.except);
    if (c.op === "emit") operator.emit(c.event, ...fromJson(c.args || []));
    else if (c.op === "socketsJoin") operator.socketsJoin(c.rooms);
    else if (c.op === "disconnectSockets") operator.disconnectSockets(!!c.close);
    else if (c.op === "serverSideEmit") emitter.of(c.namespace || "/").serverSideEmit(c.event, ...(c.args || []));
    return null;
  },
  sockets: () => Object.fromEntries([...io.of("/").sockets].map(([id, s]) => [id, [...s.rooms].sort()])),
};

httpServer.listen(0, "127.0.0.1", () => write({ port: httpServer.address().port }));

serveCommands(commands, {
  toJson,
  describe: (err) => String(err && err.stack ? err.stack : err),
  onClose: async () => {
    io.close();
    await Promise.allSettled([pubClient.quit(), subClient.quit(), emitterClient.quit()]);
    process.exit(0);
  },
});
