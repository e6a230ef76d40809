// The Node reference with @socket.io/admin-ui, for the field-by-field comparison:
//   node node_admin_server.mjs USERNAME BCRYPT_HASH MODE
// prints "PORT <n>" once it listens; "/" answers "hello" and emits "welcome".
import { createServer } from "node:http";
import { Server } from "socket.io";
import { instrument } from "@socket.io/admin-ui";

const [username, password, mode] = process.argv.slice(2);
const httpServer = createServer();
const io = new Server(httpServer, { cors: { origin: "*" } });
instrument(io, { auth: { type: "basic", username, password }, mode, serverId: "node" });
io.on("connection", (socket) => {
  socket.on("hello", (arg, ack) => {
    socket.emit("welcome", { to: socket.id });
    ack(`hello ${arg}`);
  });
});
httpServer.listen(0, "127.0.0.1", () => {
  console.log(`PORT ${httpServer.address().port}`);
});
process.on("SIGTERM", () => process.exit(0));
