// What the plan runners (sio_plan.mjs, sio_v2_plan.mjs) share: values to and from the
// report's JSON, and waiting for a condition on what the clients see.

// A value as the report carries it: binary as {"$bin": HEX} (with "kind", the JS type,
// when `withKind`), an ack callback as "$ack", an Error as {"$error": message}.
export function toJSON(value, withKind = true) {
  const again = (v) => toJSON(v, withKind);
  const bin = (bytes, kind) => (withKind ? { $bin: bytes.toString("hex"), kind } : { $bin: bytes.toString("hex") });
  if (typeof value === "function") return "$ack";
  if (Buffer.isBuffer(value)) return bin(value, "Buffer");
  if (value instanceof ArrayBuffer) return bin(Buffer.from(value), "ArrayBuffer");
  if (withKind && ArrayBuffer.isView(value)) {
    return bin(Buffer.from(value.buffer, value.byteOffset, value.byteLength), value.constructor.name);
  }
  if (value instanceof Error) return { $error: value.message };
  if (Array.isArray(value)) return value.map(again);
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, again(v)]));
  }
  return value === undefined ? null : value;
}

// A plan's value as the clients send it: {"$bin": HEX} becomes a Buffer.
export function fromJSON(value) {
  if (Array.isArray(value)) return value.map(fromJSON);
  if (value && typeof value === "object") {
    if (typeof value.$bin === "string") return Buffer.from(value.$bin, "hex");
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, fromJSON(v)]));
  }
  return value;
}

// The conditions waited for; each has a `what` for the report of a plan that timed out.
export const waiters = new Set();

// Re-check every waited condition (call on every change the clients see).
export function notify() {
  for (const waiter of [...waiters]) waiter();
}

// Resolve once predicate() holds, re-checked on every notify().
export function until(predicate, what) {
  return new Promise((resolve) => {
    const check = () => {
      if (predicate()) {
        waiters.delete(check);
        resolve();
      }
    };
    check.what = what;
    waiters.add(check);
    check();
  });
}
