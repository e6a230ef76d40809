// The Node.js reference: the bench application on socket.io 4.8 (npm), default options.
//
// Started by bench/run.py like the Python servers: `node node_server.js --port N`
// (0: any free port) binds 127.0.0.1, prints `PORT <n>` once it accepts connections and
// serves until SIGTERM or SIGINT. The socket.io package is the one bench/js/package.json
// pins (installed there by `npm ci`), loaded from that folder.
//
// The application is the same as the other servers' (see _common.py):
//   echo(data)        -> acknowledges data (text or binary)
//   join(room)        -> joins room, acknowledges "ok"
//   bcast(room, data) -> emits msg(data) to everyone in room, acknowledges "ok"
// Nothing is tuned: `new Server(httpServer)` with socket.io's defaults, as its
// documentation starts (no CORS option: the load generator sends no Origin).
'use strict';

const http = require('node:http');
const path = require('node:path');
const { createRequire } = require('node:module');

const fromBenchJs = createRequire(path.join(__dirname, '..', 'js', 'package.json'));
const { Server } = fromBenchJs('socket.io');

function option(name, fallback) {
  const index = process.argv.indexOf(`--${name}`);
  return index >= 0 && index + 1 < process.argv.length ? process.argv[index + 1] : fallback;
}

const host = option('host', '127.0.0.1');
const port = Number(option('port', '0'));

const httpServer = http.createServer();
const io = new Server(httpServer);

io.on('connection', (socket) => {
  socket.on('echo', (data, ack) => {
    if (typeof ack === 'function') ack(data);
  });
  socket.on('join', (room, ack) => {
    socket.join(room);
    if (typeof ack === 'function') ack('ok');
  });
  socket.on('bcast', (room, data, ack) => {
    io.to(room).emit('msg', data);
    if (typeof ack === 'function') ack('ok');
  });
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    io.close();
    process.exit(0);
  });
}

httpServer.listen(port, host, () => {
  process.stdout.write(`PORT ${httpServer.address().port}\n`);
});
