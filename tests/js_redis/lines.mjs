// The JSON-lines protocol of the Node test processes: one command per line on stdin,
// {"id", "cmd", ...}, answered with {"id", "result"} or {"id", "error"}; reports are
// single JSON lines on stdout too.
import { createInterface } from "node:readline";

export const write = (message) => process.stdout.write(JSON.stringify(message) + "\n");

// Run commands[cmd](command) for each line; results pass through toJson, errors through
// describe; onClose runs when stdin closes (the test is done with the process).
export function serveCommands(commands, { toJson = (value) => value, describe, onClose }) {
  const lines = createInterface({ input: process.stdin });
  lines.on("line", async (line) => {
    if (!line.trim()) return;
    const command = JSON.parse(line);
    try {
      const result = await commands[command.cmd](command);
      write({ id: command.id, result: toJson(result ?? null) });
    } catch (err) {
      write({ id: command.id, error: describe(err) });
    }
  });
  lines.on("close", onClose);
}
