// Drive real socket.io-client 2.x sockets (npm alias socket.io-client-v2: Engine.IO v3,
// Socket.IO v4) through a JSON plan and report what they saw; sio_plan.mjs's format,
// for what a 2.x client can do (it has no onAny: a client lists the events it records).
//
//   node sio_v2_plan.mjs PLAN_JSON
//
// PLAN = {"url", "transports": "websocket"|"polling"|"upgrade", "guardMs", "steps": [...]}
// Steps:
//   {"op": "connect", "as", "nsp": "/", "opts": {...}, "listen": [EVENT...],
//    "answer": {EVENT: REPLY}, "wait": "connect"|"error"|"none"}
//        io(url + nsp, opts), forceNew, no reconnection. REPLY: an array of ack arguments
//        or "echo". "wait": "error" waits for an "error" or "connect_error" event.
//   {"op": "emit", "as", "event", "args", "ack": false, "save": LABEL}
//   {"op": "waitEvent", "as", "event", "count": 1}
//   {"op": "waitDisconnect", "as"}   {"op": "waitUpgrade", "as"}
//   {"op": "idle", "ms"}   let time pass (the heartbeat runs meanwhile)
//   {"op": "silence", "as"}   the engine stops pinging, and stops watching the server
//                             (so that only the server's deadline can end the session)
//   {"op": "disconnect", "as"}
//
// The report, ONE line of JSON: {"ok", "error"?, "results": {LABEL: {"args"}},
//   "clients": {NAME: {"events", "connects", "ids", "engineIds", "errors",
//                      "connectErrors", "disconnects", "pings", "pongs", "transport"}}}
// Binary values travel as {"$bin": HEX} both ways.
import io from "socket.io-client-v2";
import { fromJSON, notify, toJSON as toReportJSON, until, waiters } from "./plan_common.mjs";

const toJSON = (value) => toReportJSON(value, false); // 2.x reports: no "kind"

const plan = JSON.parse(process.argv[2] || "{}");
const TRANSPORTS = { websocket: ["websocket"], polling: ["polling"], upgrade: ["polling", "websocket"] };
const clients = {};
const results = {};
let finished = false;

function report() {
  const out = {};
  for (const [name, c] of Object.entries(clients)) {
    const { socket, ...rest } = c;
    out[name] = { ...rest, transport: socket.io.engine ? socket.io.engine.transport?.name ?? null : null };
  }
  return out;
}

function finish(extra = {}) {
  if (finished) return;
  finished = true;
  clearTimeout(guard);
  console.log(JSON.stringify({ ok: !extra.error, results, clients: report(), ...extra }));
}

const guard = setTimeout(() => {
  const pending = [...waiters].map((w) => w.what).join("; ");
  finish({ error: `timed out after ${plan.guardMs ?? 20000} ms waiting for: ${pending}` });
  process.exit(0);
}, plan.guardMs ?? 20000);

function client(name) {
  const c = clients[name];
  if (!c) throw new Error(`no client named ${name}`);
  return c;
}

function connect(step) {
  const opts = {
    forceNew: true,
    reconnection: false,
    transports: TRANSPORTS[plan.transports ?? "websocket"],
    ...fromJSON(step.opts ?? {}),
  };
  const socket = io(plan.url + (step.nsp ?? "/"), opts);
  const c = {
    socket, events: [], connects: 0, ids: [], engineIds: [], errors: [], connectErrors: [],
    disconnects: [], pings: 0, pongs: 0,
  };
  clients[step.as] = c;
  for (const event of step.listen ?? []) {
    socket.on(event, (...args) => {
      c.events.push([event, ...args.map(toJSON)]);
      notify();
    });
  }
  for (const [event, reply] of Object.entries(step.answer ?? {})) {
    socket.on(event, (...args) => {
      const ack = typeof args[args.length - 1] === "function" ? args.pop() : null;
      if (ack && reply === "echo") ack(...args);
      else if (ack) ack(...fromJSON(reply));
    });
  }
  socket.on("connect", () => {
    c.connects += 1;
    c.ids.push(socket.id);
    c.engineIds.push(socket.io.engine.id);
    notify();
  });
  socket.on("error", (err) => {
    c.errors.push(toJSON(err));
    notify();
  });
  socket.on("connect_error", (err) => {
    // The description is the HTTP status on polling (an event object on WebSocket).
    const description = typeof err.description === "number" ? err.description : null;
    c.connectErrors.push({ message: err.message, description });
    notify();
  });
  socket.on("disconnect", (reason) => {
    c.disconnects.push(reason);
    notify();
  });
  socket.io.on("ping", () => { c.pings += 1; });
  socket.io.on("pong", () => { c.pongs += 1; notify(); });
  const wait = step.wait ?? "connect";
  if (wait === "connect") {
    return until(() => c.connects > 0 || c.errors.length || c.connectErrors.length, `${step.as} to connect`)
      .then(() => { if (!c.connects) throw new Error(`${step.as} could not connect: ${JSON.stringify([c.errors, c.connectErrors])}`); });
  }
  if (wait === "error") {
    return until(() => c.errors.length || c.connectErrors.length, `${step.as} to fail connecting`);
  }
  return null;
}

function emit(step) {
  const c = client(step.as);
  const args = fromJSON(step.args ?? []);
  if (!step.ack) {
    c.socket.emit(step.event, ...args);
    return null;
  }
  return new Promise((resolve) => {
    c.socket.emit(step.event, ...args, (...res) => {
      results[step.save ?? step.event] = { args: toJSON(res) };
      notify();
      resolve();
    });
  });
}

const OPS = {
  connect,
  emit,
  waitEvent(step) {
    const c = client(step.as);
    return until(() => c.events.filter((e) => e[0] === step.event).length >= (step.count ?? 1),
      `${step.as} to receive ${step.count ?? 1} ${step.event}`);
  },
  waitDisconnect(step) {
    const c = client(step.as);
    return until(() => c.disconnects.length > 0, `${step.as} to disconnect`);
  },
  waitUpgrade(step) {
    const engine = client(step.as).socket.io.engine;
    engine.on("upgrade", notify);
    return until(() => engine.transport.name === "websocket", `${step.as} to upgrade`);
  },
  idle(step) {
    return new Promise((resolve) => setTimeout(resolve, step.ms));
  },
  silence(step) {
    const engine = client(step.as).socket.io.engine;
    engine.removeListener("heartbeat", Object.getPrototypeOf(engine).onHeartbeat);
    engine.ping = () => {};
    engine.onHeartbeat = () => {};
    clearTimeout(engine.pingTimeoutTimer);
  },
  disconnect(step) {
    client(step.as).socket.disconnect();
  },
};

async function closeAll() {
  const engines = new Set();
  for (const c of Object.values(clients)) {
    if (c.socket.io.engine && c.socket.io.engine.readyState !== "closed") engines.add(c.socket.io.engine);
    c.socket.disconnect();
  }
  await Promise.race([
    Promise.all([...engines].map((e) => (e.readyState === "closed" ? null : new Promise((r) => e.once("close", r))))),
    new Promise((r) => setTimeout(r, 2000)),
  ]);
}

async function main() {
  for (const [index, step] of (plan.steps ?? []).entries()) {
    const op = OPS[step.op];
    if (!op) throw new Error(`step ${index}: unknown op ${step.op}`);
    try {
      await op(step);
    } catch (err) {
      throw new Error(`step ${index} (${step.op}): ${err.message}`);
    }
  }
  finish();
  await closeAll();
  process.exit(0);
}

main().catch(async (err) => {
  finish({ error: String(err && (err.stack || err)) });
  await closeAll();
  process.exit(0);
});
