// The Node reference server with @socket.io/redis-streams-adapter and connection state
// recovery, in one cluster with geventsio servers, driven by the tests over stdin/stdout.
//
//   node streams_node.mjs REDIS_URL STREAM_NAME NAME
//
// Prints {"port": N} once listening on 127.0.0.1, then answers one JSON command per line
// ({"id", "cmd", ...} -> {"id", "result"} or {"id", "error"}):
//   emit {to?, event, args}      a broadcast (to rooms, or to everyone)
//   sockets                      [{id, rooms, recovered, data}] of this server's sockets
//   fetch                        every socket id of the cluster (fetchSockets)
//   server_side_call             the other servers' answers to "whoami"
//   call {event}                 a broadcast with acknowledgements: the sorted answers
// A new socket joins the room "news" and gets data {"node": NAME}; every connection is
// reported as {"connection": {id, recovered}}, each disconnect as {"disconnect": {id,
// reason}} and each "seen" event of a client as {"seen": [id, n]}.
import { createServer } from "node:http";
import { serveCommands, write } from "./lines.mjs";
import { Server } from "socket.io";
import { createAdapter } from "@socket.io/redis-streams-adapter";
import { createClient } from "redis";

const [url, streamName, name] = process.argv.slice(2);

const redisClient = createClient({ url });
await redisClient.connect();

const httpServer = createServer();
const io = new Server(httpServer, {
  adapter: createAdapter(redisClient, { streamName, channelPrefix: streamName, blockTimeInMs: 1000 }),
  connectionStateRecovery: { maxDisconnectionDuration: 60000 },
});
io.on("connection", (socket) => {
  if (!socket.recovered) {
    socket.join("news");
    socket.data.node = name;
  }
  write({ connection: { id: socket.id, recovered: socket.recovered } });
  socket.on("seen", (n) => write({ seen: [socket.id, n] }));
  socket.on("disconnect", (reason) => write({ disconnect: { id: socket.id, reason } }));
});

io.of("/").on("whoami", (...args) => {
  const ack = args.pop();
  ack({ node: name });
});

const commands = {
  fetch: async () => (await io.fetchSockets()).map((s) => s.id).sort(),
  server_side_call: () => io.serverSideEmitWithAck("whoami"),
  call: async (c) => (await io.timeout(5000).emitWithAck(c.event)).sort(),
  emit(c) {
    const target = c.to && c.to.length ? io.to(c.to) : io;
    target.emit(c.event, ...(c.args || []));
    return null;
  },
  sockets: () =>
    [...io.of("/").sockets.values()].map((s) => ({
      id: s.id,
      rooms: [...s.rooms].sort(),
      recovered: s.recovered,
      data: s.data,
    })),
};

httpServer.listen(0, "127.0.0.1", () => write({ port: httpServer.address().port }));

serveCommands(commands, {
  describe: (err) => String(err && err.stack ? err.stack : err),
  onClose: async () => {
    io.close();
    await redisClient.quit().catch(() => {});
    process.exit(0);
  },
});
