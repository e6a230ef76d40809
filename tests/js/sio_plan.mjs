// Drive real socket.io-client sockets through a JSON plan and report what they saw.
//
//   node sio_plan.mjs PLAN_JSON
//
// PLAN = {"url": "http://127.0.0.1:PORT", "transports": "websocket"|"polling"|"upgrade",
//         "guardMs": 20000, "parser": "json"|"msgpack", "steps": [STEP, ...]}
// ("msgpack": every client uses the npm socket.io-msgpack-parser.)
//
// Every client is named by the plan ("as"). Each step waits for what it asks for (an ack,
// an event, a disconnect...) before the next one runs, so a plan is a deterministic
// script; waits are bounded by the plan's guard. Steps:
//
//   {"op": "connect", "as", "nsp": "/", "opts": {...}, "wait": "connect"|"error"|"none",
//    "answer": {EVENT: REPLY}}   io(url + nsp, opts); forceNew unless opts say otherwise.
//                               "answer" registers ack replies before connecting: REPLY is
//                               an array of arguments, "echo", or null (never answer).
//   {"op": "emit", "as", "event", "args": [...], "ack": false, "timeout": MS,
//    "promise": false, "save": LABEL, "background": false}   with "ack", wait for it (or
//                               its timeout) and save {"args", "t"} or {"error", "t"} ("t": ms
//                               since the start); "promise" uses emitWithAck; "background"
//                               goes on at once (wait later with waitResult).
//   {"op": "waitResult", "save": LABEL}   until the ack saved as LABEL has arrived.
//   {"op": "emitMany", "as", "event", "count"}   emit EVENT with 0..count-1, no ack.
//   {"op": "waitEvent", "as", "event", "count": 1}
//   {"op": "waitConnect" | "waitDisconnect" | "waitConnectError", "as", "count": 1}
//   {"op": "waitUpgrade", "as"}  until the engine runs on WebSocket.
//   {"op": "disconnect", "as"}   socket.disconnect()
//   {"op": "closeEngine", "as"}  socket.io.engine.close()
//   {"op": "fetch", "path", "save"}  an HTTP GET on the server; saves {status, body}.
//   {"op": "exit"}               print the report and exit at once, closing nothing
//                               (as a killed process: the OS drops its connections).
//
// At the end every socket is disconnected and the report printed as ONE line of JSON:
//   {"ok", "error"?, "results": {LABEL: ...},
//    "clients": {NAME: {"events": [[name, ...args]], "connects", "ids", "engineIds",
//                       "transports", "connectErrors": [{message, data}],
//                       "disconnects": [{reason, active}], "transport"}}}
// Binary values travel as {"$bin": HEX, "kind": "Buffer"|"ArrayBuffer"|...}; an ack
// callback received as an event argument shows as "$ack".
import { io } from "socket.io-client";
import { fromJSON, notify, toJSON as toReportJSON, until, waiters } from "./plan_common.mjs";

const toJSON = (value) => toReportJSON(value);

const plan = JSON.parse(process.argv[2] || "{}");
const parser =
  plan.parser === "msgpack" ? (await import("socket.io-msgpack-parser")).default : undefined;
const TRANSPORTS = { websocket: ["websocket"], polling: ["polling"], upgrade: ["polling", "websocket"] };
const started = Date.now();
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
    ...(parser ? { parser } : {}),
    ...fromJSON(step.opts ?? {}),
  };
  const socket = io(plan.url + (step.nsp ?? "/"), { ...opts, autoConnect: false });
  const c = {
    socket, events: [], connects: 0, ids: [], engineIds: [], transports: [],
    connectErrors: [], disconnects: [],
  };
  clients[step.as] = c;
  for (const [event, reply] of Object.entries(step.answer ?? {})) {
    socket.on(event, (...args) => {
      const ack = typeof args.at(-1) === "function" ? args.pop() : null;
      if (ack && reply === "echo") ack(...args);
      else if (ack && reply !== null) ack(...fromJSON(reply));
    });
  }
  socket.onAny((event, ...args) => {
    c.events.push([event, ...args.map(toJSON)]);
    notify();
  });
  socket.on("connect", () => {
    c.connects += 1;
    c.ids.push(socket.id);
    c.engineIds.push(socket.io.engine.id);
    c.transports.push(socket.io.engine.transport.name);
    notify();
  });
  socket.on("connect_error", (err) => {
    c.connectErrors.push({ message: err.message, data: toJSON(err.data ?? null) });
    notify();
  });
  socket.on("disconnect", (reason) => {
    c.disconnects.push({ reason, active: socket.active });
    notify();
  });
  socket.connect();
  const wait = step.wait ?? "connect";
  if (wait === "connect") return until(() => c.connects > 0 || c.connectErrors.length > 0, `${step.as} to connect`)
    .then(() => { if (!c.connects) throw new Error(`${step.as} could not connect: ${JSON.stringify(c.connectErrors)}`); });
  if (wait === "error") return until(() => c.connectErrors.length > 0, `${step.as} to fail connecting`);
  return null;
}

function emit(step) {
  const c = client(step.as);
  const args = fromJSON(step.args ?? []);
  if (!step.ack) {
    c.socket.emit(step.event, ...args);
    return null;
  }
  const save = (value) => {
    results[step.save ?? step.event] = { ...value, t: Date.now() - started };
    notify();
  };
  if (step.promise) {
    const target = step.timeout != null ? c.socket.timeout(step.timeout) : c.socket;
    const settled = target.emitWithAck(step.event, ...args)
      .then((value) => save({ args: [toJSON(value)] }), (err) => save({ error: err.message }));
    return step.background ? null : settled;
  }
  const done = new Promise((resolve) => {
    if (step.timeout != null) {
      c.socket.timeout(step.timeout).emit(step.event, ...args, (err, ...res) => {
        save(err ? { error: err.message } : { args: toJSON(res) });
        resolve();
      });
    } else {
      c.socket.emit(step.event, ...args, (...res) => {
        save({ args: toJSON(res) });
        resolve();
      });
    }
  });
  return step.background ? null : done;
}

function count(list, step) {
  return () => list().length >= (step.count ?? 1);
}

const OPS = {
  connect,
  emit,
  waitResult(step) {
    return until(() => step.save in results, `the ack saved as ${step.save}`);
  },
  emitMany(step) {
    const c = client(step.as);
    for (let i = 0; i < step.count; i++) c.socket.emit(step.event, i);
  },
  waitEvent(step) {
    const c = client(step.as);
    return until(count(() => c.events.filter((e) => e[0] === step.event), step),
      `${step.as} to receive ${step.count ?? 1} ${step.event}`);
  },
  waitConnect(step) {
    const c = client(step.as);
    return until(() => c.connects >= (step.count ?? 1), `${step.as} to connect`);
  },
  waitDisconnect(step) {
    const c = client(step.as);
    return until(count(() => c.disconnects, step), `${step.as} to disconnect`);
  },
  waitConnectError(step) {
    const c = client(step.as);
    return until(count(() => c.connectErrors, step), `${step.as} to get connect_error`);
  },
  waitUpgrade(step) {
    const c = client(step.as);
    const engine = c.socket.io.engine;
    engine.on("upgrade", notify);
    return until(() => engine.transport.name === "websocket", `${step.as} to upgrade`);
  },
  disconnect(step) {
    client(step.as).socket.disconnect();
  },
  closeEngine(step) {
    client(step.as).socket.io.engine.close();
  },
  async fetch(step) {
    const response = await fetch(plan.url + step.path);
    results[step.save ?? step.path] = { status: response.status, body: await response.text() };
  },
  exit() {
    finish();
    process.exit(0);
  },
};

// Disconnect everything, and give each engine a bounded moment to say goodbye, so that
// the server hears "client namespace disconnect" rather than a dropped connection.
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
  const report = { ok: true };
  finish(report);
  await closeAll();
  process.exit(0);
}

main().catch(async (err) => {
  finish({ error: String(err && (err.stack || err)) });
  await closeAll();
  process.exit(0);
});
