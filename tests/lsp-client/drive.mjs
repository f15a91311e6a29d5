// Drives `elitea-tokens serve` the way VS Code's language client does, with vscode-jsonrpc over
// the daemon's stdio. Prints one JSON summary line on stdout; exits non-zero on any failure.
// Environment: ELITEA_TOKENS_BIN (the binary), WORKSPACE (a folder), plus what the daemon needs
// (ELITEA_SERVER, ELITEA_TOKEN, ELITEA_TOKENS_HOME, ELITEA_SECRET_STORE).
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import * as rpc from "vscode-jsonrpc/node.js";

const bin = process.env.ELITEA_TOKENS_BIN;
const workspace = process.env.WORKSPACE;
const child = spawn(bin, ["serve"], { stdio: ["pipe", "pipe", "inherit"], env: process.env });
const connection = rpc.createMessageConnection(
  new rpc.StreamMessageReader(child.stdout),
  new rpc.StreamMessageWriter(child.stdin),
);

const notifications = [];
const waiters = [];
for (const method of ["elitea/tokenExpiring", "elitea/tokensChanged"]) {
  connection.onNotification(method, (params) => {
    notifications.push({ method, params });
    for (const w of waiters.splice(0)) w();
  });
}
const progress = [];
connection.onNotification("$/progress", (params) => {
  if (params.value.kind === "report") progress.push(params.value.message);
});
connection.listen();

const call = (method, params) => connection.sendRequest(method, params);
async function waitFor(test, ms) {
  const deadline = Date.now() + ms;
  for (;;) {
    const found = notifications.find(test);
    if (found) return found;
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`timed out waiting for a notification`);
    await new Promise((resolve) => {
      waiters.push(resolve);
      setTimeout(resolve, left);
    });
  }
}
async function expectError(method, params, kind) {
  try {
    await call(method, params);
  } catch (e) {
    if (e.data?.kind !== kind) throw new Error(`${method}: expected ${kind}, got ${JSON.stringify(e.data)}`);
    return e.code;
  }
  throw new Error(`${method}: expected an error`);
}

const summary = {};
try {
  const init = await call("initialize", {
    processId: process.pid,
    capabilities: {},
    workspaceFolders: [{ uri: pathToFileURL(workspace).href, name: "ws" }],
    initializationOptions: { notifications: ["elitea/tokenExpiring", "elitea/tokensChanged"] },
  });
  summary.server = init.serverInfo.name;
  connection.sendNotification("initialized", {});

  summary.status = (await call("elitea/status", {})).credential;
  const created = await call("elitea/createToken", { name: "VSCode-Node", expires: "30d" });
  summary.createdLength = created.value.length;
  summary.duplicate = await expectError("elitea/createToken", { name: "VSCode-Node" }, "name_taken");
  const preview = await call("elitea/previewSettings", { name: "VSCode-Node", ide: "vscode" });
  summary.previewHasToken = preview.files[0].content.includes(created.value);
  const applied = await call("elitea/applySettings", { name: "VSCode-Node", ide: "vscode" });
  const settings = readFileSync(`${workspace}/.vscode/settings.json`, "utf8");
  summary.appliedFiles = applied.files.map((f) => f.relative);
  summary.fileHasToken = settings.includes(created.value);
  const list = await call("elitea/listTokens", { search: "node" });
  summary.listed = list.tokens.map((t) => ({ name: t.name, stored: t.stored, usedIn: t.usedIn.length }));

  const rotated = await call("elitea/rotateToken", { name: "VSCode-Node", workDoneToken: "rotate-1" });
  summary.rotated = rotated.outcome;
  summary.progress = progress.slice();
  const after = readFileSync(`${workspace}/.vscode/settings.json`, "utf8");
  summary.fileChanged = !after.includes(created.value);
  const newName = rotated.new.name;
  summary.wrongConfirm = await expectError("elitea/deleteToken", { name: newName, confirm: "nope" }, "invalid_input");

  // A minutes-long token in the workspace: its reminder comes at 20 % of its lifetime left.
  await call("elitea/createToken", { name: "short-lived", expires: "1m" });
  await call("elitea/applySettings", { name: "short-lived", ide: "vscode" });
  const started = Date.now();
  const reminder = await waitFor((n) => n.method === "elitea/tokenExpiring" && n.params.name === "short-lived", 90_000);
  summary.reminder = { kind: reminder.params.kind, severity: reminder.params.severity, afterSeconds: Math.round((Date.now() - started) / 1000) };

  const deleted = await call("elitea/deleteToken", { name: newName, confirm: newName });
  summary.deleted = deleted.deleted.name === newName;
  await connection.sendRequest("shutdown");
  // Notifications travel apart from responses: count them once everything is answered.
  summary.changes = [...new Set(notifications.filter((n) => n.method === "elitea/tokensChanged").map((n) => n.params.reason))].sort();
  connection.sendNotification("exit");
  const code = await new Promise((resolve) => child.on("exit", resolve));
  summary.exitCode = code;
  console.log(JSON.stringify(summary));
  process.exit(0);
} catch (e) {
  console.error(e);
  console.log(JSON.stringify({ failed: String(e), ...summary }));
  child.kill();
  process.exit(1);
}
