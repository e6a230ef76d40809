// Socket.IO clients (the real socket.io-client) reaching geventsio through nginx, each
// from a source address of its own (127.0.N.1: the whole 127/8 is loopback on Linux), so
// that nginx's ip_hash tells them apart. One scenario per run, then one JSON line:
//
//   node --input-type=module - PLAN_JSON < clients.mjs   (cwd tests/js, for node_modules)
//
// PLAN: {url, emits, broadcasts: [{from, room, members: [names]}],
//        clients: [{name, address, transports, rooms}]}
// Each client connects (reconnection off: a failure is reported, never hidden), waits
// for the upgrade when it may use both transports, asks `whoami`, sends `emits` echo
// events one after the other, each checked against its acknowledgement. Then, one after
// the other, each broadcast is asked of its `from` client's server, and awaited by every
// member. Result: {clients: [{name, address, connected, whoami, acks, transport, news,
// errors, connectMs}]}. Every wait is bounded; an overall deadline ends the run.
import http from "node:http";
import { isDeepStrictEqual } from "node:util";
import { io } from "socket.io-client";

const plan = JSON.parse(process.argv[2]);
const STEP_MS = 5000;
const OVERALL_MS = 40000;

const write = (message) => process.stdout.write(JSON.stringify(message) + "\n");

const bounded = (promise, what, ms = STEP_MS) => {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
};

const describe = (value) => {
  if (value === undefined || value === null) return null;
  if (typeof value === "number" || typeof value === "string") return value;
  if (value.description !== undefined) return describe(value.description);
  return value.message ?? String(value);
};

function open(spec) {
  const record = {
    name: spec.name,
    address: spec.address,
    connected: false,
    whoami: null,
    acks: 0,
    transport: null,
    news: [],
    errors: [],
    connectMs: null,
  };
  const agent = new http.Agent({ localAddress: spec.address });
  const socket = io(plan.url, {
    transports: spec.transports,
    agent,
    localAddress: spec.address,
    auth: { rooms: spec.rooms ?? [] },
    reconnection: false,
    forceNew: true,
    timeout: STEP_MS,
  });
  socket.on("news", (message) => record.news.push(message));
  socket.on("connect_error", (err) =>
    record.errors.push({ event: "connect_error", message: err.message, status: describe(err) }),
  );
  socket.on("disconnect", (reason, details) => {
    if (reason === "io client disconnect") return; // ours, at the end
    record.errors.push({ event: "disconnect", message: reason, status: describe(details) });
  });
  const started = Date.now();
  const connected = new Promise((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("connect_error", reject);
  }).then(() => {
    record.connected = true;
    record.connectMs = Date.now() - started;
  });
  connected.catch(() => {}); // awaited by converse(); a refusal is recorded above
  const failed = new Promise((resolve) => {
    socket.once("connect_error", () => resolve((record.connectMs = Date.now() - started)));
  });
  return { spec, socket, record, connected, failed, agent };
}

async function upgraded(client) {
  const engine = client.socket.io.engine;
  if (engine.transport.name === "websocket") return;
  await bounded(new Promise((resolve) => engine.once("upgrade", resolve)), `${client.spec.name} upgrades`);
}

async function converse(client) {
  const { socket, record, spec } = client;
  await bounded(client.connected, `${spec.name} connects`);
  if (spec.transports.includes("websocket") && spec.transports.includes("polling")) {
    await upgraded(client);
  }
  record.whoami = await socket.timeout(STEP_MS).emitWithAck("whoami");
  for (let i = 0; i < (plan.emits ?? 0); i++) {
    const args = [i, spec.name, { nested: [i, "é"] }];
    const answer = await socket.timeout(STEP_MS).emitWithAck("echo", ...args);
    if (!isDeepStrictEqual(answer, args)) {
      throw new Error(`${spec.name}: echo ${i} answered ${JSON.stringify(answer)}`);
    }
    record.acks += 1;
  }
  record.transport = socket.io.engine.transport.name;
}

async function broadcast(clients, { from, room, members }, index) {
  const text = `${room}-${index}`;
  const sender = clients.find((client) => client.spec.name === from);
  await sender.socket.timeout(STEP_MS).emitWithAck("broadcast", room, text);
  const everyone = clients.filter((client) => members.includes(client.spec.name));
  const arrived = (client) => client.record.news.some((message) => message.text === text);
  await bounded(
    new Promise((resolve) => {
      const check = () => (everyone.every(arrived) ? resolve() : setTimeout(check, 5));
      check();
    }),
    `${text} reaches ${members.join(", ")}`,
  );
}

async function main() {
  const clients = plan.clients.map(open);
  let failure = null;
  try {
    if (plan.expectFailure) {
      await bounded(Promise.all(clients.map((client) => client.failed)), "connect_error");
    } else {
      await Promise.all(clients.map(converse));
      for (const [index, step] of (plan.broadcasts ?? []).entries()) {
        await broadcast(clients, step, index);
      }
    }
  } catch (err) {
    failure = String(err && err.stack ? err.stack : err);
  }
  for (const client of clients) {
    client.socket.disconnect();
    client.agent.destroy();
  }
  write({ failure, clients: clients.map((client) => client.record) });
  process.exit(0);
}

setTimeout(() => {
  write({ failure: `the scenario took more than ${OVERALL_MS} ms` });
  process.exit(1);
}, OVERALL_MS).unref();
main();
