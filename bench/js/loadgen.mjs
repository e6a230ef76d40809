// The load generator of geventsio's benchmark suite: one Node.js process, raw Engine.IO v4 /
// Socket.IO v5 frames over `ws` (WebSocket) and a minimal keep-alive HTTP/1.1 client on
// `net` (long-polling), so that the generator costs as little CPU per message as it can.
//
//   node loadgen.mjs <scenario> '<options as JSON>'
//
// Scenarios: echo, binary, broadcast, connect, idle, polling (see bench/README.md). Prints
// progress on stderr and one JSON object, the result, as the last line of stdout. Every
// result carries `window` (the measured seconds), `generator_cpu` and `server_cpu` (the
// share of one core each process used during the window: the generator's from
// process.cpuUsage(), the server's from /proc/<pid>/stat) and `other_cpu` (the cores the
// rest of the machine kept busy meanwhile, from /proc/stat: noise in the measurement).

import fs from 'node:fs';
import net from 'node:net';
import WebSocket from 'ws';

const [, , scenario, optionsJson] = process.argv;
const O = { host: '127.0.0.1', port: 5000, serverPid: 0, clkTck: 100, warmup: 2, duration: 8,
  payloadSize: 100, binarySize: 1024, timeout: 60, ...JSON.parse(optionsJson || '{}') };

const log = (...args) => process.stderr.write(`[loadgen ${scenario}] ${args.join(' ')}\n`);
const sleep = (s) => new Promise((resolve) => setTimeout(resolve, s * 1000));
const nowUs = () => Number(process.hrtime.bigint() / 1000n);

// -- measuring -----------------------------------------------------------------------------

function serverCpuSeconds() {
  if (!O.serverPid) return NaN;
  const stat = fs.readFileSync(`/proc/${O.serverPid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / O.clkTck; // utime, stime
}

function serverRssKiB() {
  const status = fs.readFileSync(`/proc/${O.serverPid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)[1]);
}

// Busy CPU seconds of the whole machine (all cores), from /proc/stat.
function machineBusySeconds() {
  const fields = fs.readFileSync('/proc/stat', 'utf8').split('\n', 1)[0].trim().split(/\s+/);
  const ticks = fields.slice(1, 9).map(Number); // user nice system idle iowait irq softirq steal
  return (ticks[0] + ticks[1] + ticks[2] + ticks[5] + ticks[6] + ticks[7]) / O.clkTck;
}

function startWindow() {
  return { t: nowUs(), cpu: process.cpuUsage(), server: serverCpuSeconds(),
    machine: machineBusySeconds() };
}

function endWindow(start) {
  const seconds = (nowUs() - start.t) / 1e6;
  const cpu = process.cpuUsage(start.cpu);
  const generator = (cpu.user + cpu.system) / 1e6 / seconds;
  const server = (serverCpuSeconds() - start.server) / seconds;
  const machine = (machineBusySeconds() - start.machine) / seconds;
  // other_cpu: what the rest of the machine used meanwhile (noise), in cores.
  return { window: seconds, generator_cpu: generator, server_cpu: server,
    other_cpu: Math.max(0, machine - generator - server) };
}

function percentiles(samples, count) {
  if (!count) return { p50_ms: null, p99_ms: null };
  const sorted = samples.subarray(0, count).sort();
  const at = (q) => sorted[Math.min(count - 1, Math.floor(q * count))] / 1000;
  return { p50_ms: at(0.5), p99_ms: at(0.99) };
}

class Samples {
  constructor() { this.values = new Float64Array(1 << 16); this.count = 0; }
  add(value) {
    if (this.count === this.values.length) {
      const bigger = new Float64Array(this.values.length * 2);
      bigger.set(this.values);
      this.values = bigger;
    }
    this.values[this.count++] = value;
  }
}

// -- a minimal WebSocket client on net ----------------------------------------------------------

// `ws` costs ~16 µs of CPU per message received and ~700 µs per connection opened: enough
// to saturate one core before the server under test is. This client does only what the
// scenarios need: the opening handshake (the answer's status is checked, not its accept
// key), unfragmented frames each way, ping/pong and close. Frames it sends are masked with
// a zero key (valid, and no XOR to compute). `O.client = "ws"` uses `ws` instead.

const UPGRADE = (path) => `GET ${path} HTTP/1.1\r\nHost: ${O.host}:${O.port}\r\n` +
  'Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n' +
  'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n';
const ZERO_MASK = Buffer.alloc(4);

function frameHeader(opcode, length) {
  if (length < 126) return Buffer.from([0x80 | opcode, 0x80 | length, 0, 0, 0, 0]);
  if (length < 65536) {
    const h = Buffer.alloc(8);
    h[0] = 0x80 | opcode; h[1] = 0x80 | 126; h.writeUInt16BE(length, 2);
    return h;
  }
  const h = Buffer.alloc(14);
  h[0] = 0x80 | opcode; h[1] = 0x80 | 127; h.writeBigUInt64BE(BigInt(length), 2);
  return h;
}

class RawWebSocket {
  // onMessage(payload: Buffer, isBinary), onOpen(), onError(err)
  constructor(path, onMessage, onOpen, onError) {
    this.onMessage = onMessage;
    this.onError = onError;
    this.buf = null;
    this.open = false;
    this.sock = net.connect(O.port, O.host, () => this.sock.write(UPGRADE(path)));
    this.sock.setNoDelay(true);
    this.sock.on('data', (chunk) => {
      this.buf = this.buf && this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
      if (!this.open) {
        const end = this.buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        if (this.buf.toString('latin1', 0, 12) !== 'HTTP/1.1 101') {
          onError(new Error(`upgrade refused: ${this.buf.toString('latin1', 0, end)}`));
          this.terminate();
          return;
        }
        this.open = true;
        this.buf = this.buf.subarray(end + 4);
        onOpen();
      }
      this.parse();
    });
    this.sock.on('error', (err) => onError(err));
  }

  parse() {
    let buf = this.buf;
    let pos = 0;
    while (buf.length - pos >= 2) {
      const b0 = buf[pos];
      let length = buf[pos + 1] & 0x7f;
      let start = pos + 2;
      if (length === 126) {
        if (buf.length - start < 2) break;
        length = buf.readUInt16BE(start); start += 2;
      } else if (length === 127) {
        if (buf.length - start < 8) break;
        length = Number(buf.readBigUInt64BE(start)); start += 8;
      }
      if (buf.length - start < length) break;
      const payload = buf.subarray(start, start + length);
      pos = start + length;
      const opcode = b0 & 0x0f;
      if (opcode === 1 || opcode === 2) this.onMessage(payload, opcode === 2);
      else if (opcode === 9) this.sendFrame(10, payload);
      else if (opcode === 8) { this.terminate(); return; }
      if (!this.sock) return;
    }
    this.buf = pos === buf.length ? null : buf.subarray(pos);
  }

  sendFrame(opcode, payload) {
    if (!this.sock) return;
    this.sock.cork(); // one writev, as ws does: header and payload in one segment
    this.sock.write(frameHeader(opcode, payload.length));
    this.sock.write(payload);
    this.sock.uncork();
  }

  send(data) {
    if (typeof data === 'string') this.sendFrame(1, Buffer.from(data));
    else this.sendFrame(2, data);
  }

  terminate() {
    if (this.sock) { this.sock.destroy(); this.sock = null; }
  }
}

// -- Socket.IO over a WebSocket -------------------------------------------------------------

const WS_OPTIONS = { perMessageDeflate: false, skipUTF8Validation: true };
const SIO_PATH = '/socket.io/?EIO=4&transport=websocket';

// Open a WebSocket-only Engine.IO session and join the main namespace. Resolves with the
// socket (`send`, `terminate`) once the CONNECT acknowledgement ("40{...}") arrived;
// `onPacket(text|Buffer, isBinary)` then gets every later message but pings, which are
// answered here. With `rawText`, text arrives as a Buffer too (no decoding).
function sioConnect(onPacket, rawText = false) {
  return new Promise((resolve, reject) => {
    let connected = false;
    let ws = null;
    const onMessage = (data, isBinary) => {
      if (isBinary) { onPacket(data, true); return; }
      if (connected && rawText && !(data.length === 1 && data[0] === 0x32)) {
        onPacket(data, false);
        return;
      }
      const text = data.toString();
      if (connected) {
        if (text === '2') ws.send('3');
        else onPacket(text, false);
      } else if (text[0] === '0') {
        ws.send('40');
      } else if (text.startsWith('40')) {
        connected = true;
        resolve(ws);
      } else if (text.startsWith('44')) {
        reject(new Error(`connect refused: ${text}`));
      }
    };
    const onError = (err) => { if (!connected) reject(err); };
    if (O.client === 'ws') {
      ws = new WebSocket(`ws://${O.host}:${O.port}${SIO_PATH}`, WS_OPTIONS);
      ws.on('message', onMessage);
      ws.on('error', onError);
    } else {
      ws = new RawWebSocket(SIO_PATH, onMessage, () => {}, onError);
    }
  });
}

async function connectMany(count, concurrency, makeHandler, rawText = false) {
  const sockets = new Array(count);
  let next = 0;
  async function worker() {
    while (next < count) {
      const index = next++;
      sockets[index] = await sioConnect(makeHandler(index), rawText);
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return sockets;
}

function closeAll(sockets) {
  for (const ws of sockets) if (ws) ws.terminate();
}

function jsonPayload(size) {
  const text = 'x'.repeat(Math.max(0, size - '{"text":""}'.length));
  return JSON.stringify({ text });
}

// The ack id of an ACK packet "43<id>[...]" or a BINARY_ACK "461-<id>[...]".
function ackId(text, prefixLength) {
  let id = 0;
  for (let i = prefixLength; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 48 || c > 57) return id;
    id = id * 10 + (c - 48);
  }
  return id;
}

// -- closed-loop echo with acknowledgement (text or binary) ---------------------------------

async function echo(binary) {
  const payload = jsonPayload(O.payloadSize);
  const attachment = Buffer.alloc(O.binarySize, 7);
  const placeholder = '{"_placeholder":true,"num":0}';
  const latencies = new Samples();
  let counting = false;
  let running = true;
  let acks = 0;
  let checked = 0;
  const clients = [];

  function send(client) {
    client.id += 1;
    client.sentAt = nowUs();
    if (binary) {
      client.ws.send(`451-${client.id}["echo",${placeholder}]`);
      client.ws.send(attachment);
    } else {
      client.ws.send(`42${client.id}["echo",${payload}]`);
    }
  }

  function onAck(client) {
    if (counting) { acks += 1; latencies.add(nowUs() - client.sentAt); }
    if (running) send(client);
  }

  function makeHandler(index) {
    const client = { id: 0, sentAt: 0, ws: null, awaitingAttachment: false };
    clients[index] = client;
    return (data, isBinary) => {
      if (binary) {
        if (isBinary) {
          if (!client.awaitingAttachment || data.length !== O.binarySize) {
            throw new Error(`unexpected attachment of ${data.length} bytes`);
          }
          client.awaitingAttachment = false;
          onAck(client);
        } else if (text4(data, '461-')) {
          if (ackId(data, 4) !== client.id) throw new Error(`wrong ack: ${data}`);
          client.awaitingAttachment = true;
        }
      } else if (text4(data, '43')) {
        if (ackId(data, 2) !== client.id) throw new Error(`wrong ack: ${data}`);
        if (checked < 5 && !data.endsWith(`[${payload}]`)) throw new Error(`bad echo: ${data}`);
        checked += 1;
        onAck(client);
      }
    };
  }

  const sockets = await connectMany(O.clients, 50, makeHandler);
  sockets.forEach((ws, i) => { clients[i].ws = ws; });
  log(`${O.clients} clients connected`);
  clients.forEach(send);
  await sleep(O.warmup);
  counting = true;
  const window = startWindow();
  await sleep(O.duration);
  const measured = endWindow(window);
  counting = false;
  running = false;
  closeAll(sockets);
  return { acks, rate: acks / measured.window, ...percentiles(latencies.values, latencies.count),
    ...measured };
}

function text4(data, prefix) {
  return typeof data === 'string' && data.startsWith(prefix);
}

// -- broadcast to a room --------------------------------------------------------------------

async function broadcast() {
  const payload = jsonPayload(O.payloadSize);
  const room = 'bench';
  const n = O.clients;
  let deliveries = 0;
  let sent = 0;
  let running = true;
  let trigger = null;
  let joinAcks = 0;
  let onJoined = null;
  const window = O.window || 2; // broadcasts in flight at once

  function pump() {
    while (running && sent - Math.floor(deliveries / n) < window) {
      sent += 1;
      trigger.send(`42${1000000 + sent}["bcast","${room}",${payload}]`);
    }
  }

  function makeHandler() {
    return (data, isBinary) => {
      if (isBinary) return;
      if (data[0] === 0x34 && data[1] === 0x32 && data[2] === 0x5b && data[5] === 0x73) {
        deliveries += 1; // 42["msg"...
        if (trigger) pump();
      } else if (data[0] === 0x34 && data[1] === 0x33 && data[2] === 0x30) {
        joinAcks += 1; // 430[...]
        if (joinAcks === n && onJoined) onJoined();
      }
    };
  }

  const sockets = await connectMany(n, 100, makeHandler, true);
  const joined = new Promise((resolve) => { onJoined = resolve; });
  for (const ws of sockets) ws.send(`420["join","${room}"]`);
  await joined;
  log(`${n} clients in the room`);
  trigger = sockets[0];
  pump();
  await sleep(O.warmup);
  const before = deliveries;
  const start = startWindow();
  await sleep(O.duration);
  const measured = endWindow(start);
  const counted = deliveries - before;
  running = false;
  closeAll(sockets);
  return { deliveries: counted, rate: counted / measured.window,
    broadcasts_per_s: counted / n / measured.window, room: n, in_flight: window, ...measured };
}

// -- connection rate ------------------------------------------------------------------------

async function connect() {
  const latencies = new Samples();
  let counting = false;
  let running = true;
  let connects = 0;
  let failures = 0;

  async function worker() {
    while (running) {
      const t0 = nowUs();
      try {
        const ws = await sioConnect(() => {});
        ws.terminate();
        if (counting) { connects += 1; latencies.add(nowUs() - t0); }
      } catch (err) {
        failures += 1;
        if (failures > 100) throw err;
      }
    }
  }

  const workers = Array.from({ length: O.clients }, worker);
  await sleep(O.warmup);
  counting = true;
  const start = startWindow();
  await sleep(O.duration);
  const measured = endWindow(start);
  counting = false;
  running = false;
  await Promise.all(workers);
  return { connects, rate: connects / measured.window, failures, concurrency: O.clients,
    ...percentiles(latencies.values, latencies.count), ...measured };
}

// -- idle memory ----------------------------------------------------------------------------

async function idle() {
  // Warm the server up first (imports, caches, first allocations), then take the baseline.
  closeAll(await connectMany(50, 50, () => () => {}));
  await sleep(O.settle);
  const baseline = serverRssKiB();
  const start = startWindow();
  const sockets = await connectMany(O.clients, 100, () => () => {});
  log(`${O.clients} idle connections open`);
  await sleep(O.settle);
  const samples = [];
  for (let i = 0; i < 3; i++) { samples.push(serverRssKiB()); await sleep(0.5); }
  const measured = endWindow(start);
  const loaded = Math.max(...samples);
  closeAll(sockets);
  return { connections: O.clients, baseline_rss_kib: baseline, loaded_rss_kib: loaded,
    rate: (loaded - baseline) / O.clients, ...measured };
}

// -- long-polling echo over a minimal keep-alive HTTP/1.1 client ----------------------------

// One keep-alive connection, one request at a time. Understands Content-Length and chunked
// bodies, and reconnects when the server says (or does) `Connection: close`.
class HttpConnection {
  constructor() { this.sock = null; this.buf = Buffer.alloc(0); this.pending = null; }

  open() {
    this.sock = net.connect(O.port, O.host);
    this.sock.setNoDelay(true);
    this.buf = Buffer.alloc(0);
    this.sock.on('data', (chunk) => {
      this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
      this.parse();
    });
    const gone = (err) => {
      const pending = this.pending;
      this.sock = null;
      if (pending) { this.pending = null; pending.reject(err || new Error('connection closed')); }
    };
    this.sock.on('error', gone);
    this.sock.on('close', () => gone(null));
  }

  request(method, path, body) {
    if (!this.sock) this.open();
    return new Promise((resolve, reject) => {
      this.pending = { resolve, reject };
      const head = `${method} ${path} HTTP/1.1\r\nHost: ${O.host}:${O.port}\r\n`;
      if (body === undefined) {
        this.sock.write(`${head}\r\n`);
      } else {
        const bytes = Buffer.from(body);
        this.sock.write(`${head}Content-Type: text/plain;charset=UTF-8\r\n` +
          `Content-Length: ${bytes.length}\r\n\r\n${body}`);
      }
    });
  }

  parse() {
    const end = this.buf.indexOf('\r\n\r\n');
    if (end < 0) return;
    const head = this.buf.toString('latin1', 0, end).toLowerCase();
    let body = null;
    let consumed = 0;
    const length = /\r\ncontent-length:\s*(\d+)/.exec(head);
    if (length) {
      const size = Number(length[1]);
      if (this.buf.length < end + 4 + size) return;
      body = this.buf.subarray(end + 4, end + 4 + size);
      consumed = end + 4 + size;
    } else if (head.includes('transfer-encoding: chunked')) {
      const parts = [];
      let pos = end + 4;
      for (;;) {
        const lineEnd = this.buf.indexOf('\r\n', pos);
        if (lineEnd < 0) return;
        const size = parseInt(this.buf.toString('latin1', pos, lineEnd), 16);
        if (this.buf.length < lineEnd + 2 + size + 2) return;
        if (size === 0) { consumed = lineEnd + 4; break; }
        parts.push(this.buf.subarray(lineEnd + 2, lineEnd + 2 + size));
        pos = lineEnd + 2 + size + 2;
      }
      body = Buffer.concat(parts);
    } else {
      throw new Error(`response without a length: ${head}`);
    }
    const status = Number(head.slice(9, 12));
    const close = /\r\nconnection:\s*close/.test(head);
    this.buf = this.buf.subarray(consumed);
    const pending = this.pending;
    this.pending = null;
    if (close) { this.sock.removeAllListeners(); this.sock.destroy(); this.sock = null; }
    if (status !== 200) pending.reject(new Error(`HTTP ${status}: ${body}`));
    else pending.resolve(body.toString());
  }
}

class PollingClient {
  constructor(onPacket) {
    this.get = new HttpConnection();
    this.post = new HttpConnection();
    this.path = `/socket.io/?EIO=4&transport=polling`;
    this.onPacket = onPacket;
    this.outbox = [];
    this.posting = false;
    this.running = true;
  }

  // Each request's target: the path and, as socket.io-client adds by default
  // (timestampRequests), a `t` parameter no two requests share.
  target() {
    return `${this.path}&t=${Date.now().toString(36).substring(3)}${Math.random().toString(36).substring(2, 5)}`;
  }

  async open() {
    const open = await this.get.request('GET', this.target());
    const sid = JSON.parse(open.slice(1)).sid;
    this.path = `${this.path}&sid=${sid}`;
    this.send('40');
    for (;;) {
      const packets = (await this.get.request('GET', this.target())).split('\x1e');
      if (packets.some((p) => p.startsWith('40'))) break;
      if (packets.some((p) => p.startsWith('44'))) throw new Error(`refused: ${packets}`);
    }
    this.poll();
  }

  async poll() {
    while (this.running) {
      let body;
      try {
        body = await this.get.request('GET', this.target());
      } catch (err) {
        if (this.running) throw err;
        return;
      }
      for (const packet of body.split('\x1e')) {
        if (packet === '2') this.send('3');
        else if (packet === '1') { this.running = false; return; }
        else if (packet !== '6') this.onPacket(packet);
      }
    }
  }

  // POSTs never overlap: packets queued meanwhile leave together in the next one.
  send(packet) {
    this.outbox.push(packet);
    if (!this.posting) this.flush();
  }

  async flush() {
    this.posting = true;
    while (this.outbox.length) {
      const body = this.outbox.join('\x1e');
      this.outbox = [];
      await this.post.request('POST', this.target(), body);
    }
    this.posting = false;
  }

  close() {
    this.running = false;
    for (const c of [this.get, this.post]) if (c.sock) { c.sock.removeAllListeners(); c.sock.destroy(); }
  }
}

async function polling() {
  const payload = jsonPayload(O.payloadSize);
  const latencies = new Samples();
  let counting = false;
  let running = true;
  let acks = 0;
  const clients = [];

  function send(state) {
    state.id += 1;
    state.sentAt = nowUs();
    state.client.send(`42${state.id}["echo",${payload}]`);
  }

  for (let i = 0; i < O.clients; i++) {
    const state = { id: 0, sentAt: 0, client: null };
    state.client = new PollingClient((packet) => {
      if (!packet.startsWith('43')) return;
      if (ackId(packet, 2) !== state.id) throw new Error(`wrong ack: ${packet}`);
      if (counting) { acks += 1; latencies.add(nowUs() - state.sentAt); }
      if (running) send(state);
    });
    clients.push(state);
  }
  await Promise.all(clients.map((s) => s.client.open()));
  log(`${O.clients} polling clients connected`);
  clients.forEach(send);
  await sleep(O.warmup);
  counting = true;
  const start = startWindow();
  await sleep(O.duration);
  const measured = endWindow(start);
  counting = false;
  running = false;
  clients.forEach((s) => s.client.close());
  return { acks, rate: acks / measured.window, ...percentiles(latencies.values, latencies.count),
    ...measured };
}

// -- main -----------------------------------------------------------------------------------

const SCENARIOS = {
  echo: () => echo(false),
  binary: () => echo(true),
  broadcast,
  connect,
  idle,
  polling,
};

const watchdog = setTimeout(() => {
  process.stdout.write(`${JSON.stringify({ error: `timed out after ${O.timeout} s` })}\n`);
  process.exit(2);
}, O.timeout * 1000);

for (const event of ['uncaughtException', 'unhandledRejection']) process.on(event, (err) => {
  process.stdout.write(`${JSON.stringify({ error: String(err && err.stack || err) })}\n`);
  process.exit(1);
});

try {
  if (!SCENARIOS[scenario]) throw new Error(`unknown scenario ${scenario}`);
  const result = await SCENARIOS[scenario]();
  process.stdout.write(`${JSON.stringify(result)}\n`);
  clearTimeout(watchdog);
  process.exit(0);
} catch (err) {
  process.stdout.write(`${JSON.stringify({ error: String(err && err.stack || err) })}\n`);
  process.exit(1);
}
