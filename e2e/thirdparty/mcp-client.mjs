#!/usr/bin/env node
// A scripted MCP client built on the official TypeScript SDK, for Hangar's
// end-to-end tests: it reads a plan (JSON) on stdin, connects to one MCP
// server, runs the plan's steps in order and prints one JSON report on stdout.
// The Go side is e2e/thirdparty (RunClient); see client.go for the plan and
// report types.
//
// Plan:
//   {"url": "http://127.0.0.1:PORT/mcp"}               Streamable HTTP, or
//   {"command": "/path/agent", "args": [...], "env": {}} stdio
//   "clientInfo": {"name", "version"}                   optional
//   "capabilities": {                                   what the client declares and answers
//     "sampling":    {"reply": CreateMessageResult},   canned answer to sampling/createMessage
//     "elicitation": {"reply": ElicitResult},          canned answer to elicitation/create
//     "roots":       [{"uri", "name"}]}                answer to roots/list
//   "steps": [{"op": ..., ...}]                         see runStep
//   "timeoutMs": 30000                                  per request
//   "keepSession": false                                true: no HTTP DELETE at the end
//
// Report: {"ok", "error", "sessionId", "protocolVersion", "serverInfo",
//   "serverCapabilities", "instructions", "steps": [{"op", "ok", "result",
//   "error", "progress", "ms"}], "notifications": {method: [params...]},
//   "serverRequests": {method: [params...]}}
// A failed step is reported and the next one still runs; the process exits
// 0 when it could connect and 2 when it could not.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import {
  CreateMessageRequestSchema,
  ElicitRequestSchema,
  ListRootsRequestSchema,
  ResultSchema,
} from "@modelcontextprotocol/sdk/types.js";

const report = {
  ok: false,
  steps: [],
  notifications: {},
  serverRequests: {},
};
const waiters = [];

function record(table, method, params) {
  (table[method] ??= []).push(params ?? {});
  for (const w of [...waiters]) w.check();
}

async function readStdin() {
  const chunks = [];
  for await (const c of process.stdin) chunks.push(c);
  return JSON.parse(Buffer.concat(chunks).toString("utf8"));
}

function makeTransport(plan) {
  if (plan.url) return new StreamableHTTPClientTransport(new URL(plan.url));
  if (plan.command) {
    return new StdioClientTransport({
      command: plan.command,
      args: plan.args ?? [],
      env: { ...process.env, ...(plan.env ?? {}) },
      stderr: "inherit",
    });
  }
  throw new Error("plan needs url or command");
}

function makeClient(plan) {
  const caps = plan.capabilities ?? {};
  const declared = {};
  if (caps.sampling) declared.sampling = {};
  if (caps.elicitation) declared.elicitation = { form: {} };
  if (caps.roots) declared.roots = { listChanged: true };
  const client = new Client(plan.clientInfo ?? { name: "hangar-e2e-ts", version: "1.0.0" }, {
    capabilities: declared,
  });
  client.fallbackNotificationHandler = async (n) => record(report.notifications, n.method, n.params);
  if (caps.sampling) {
    client.setRequestHandler(CreateMessageRequestSchema, async (req) => {
      record(report.serverRequests, req.method, req.params);
      return caps.sampling.reply;
    });
  }
  if (caps.elicitation) {
    client.setRequestHandler(ElicitRequestSchema, async (req) => {
      record(report.serverRequests, req.method, req.params);
      return caps.elicitation.reply;
    });
  }
  if (caps.roots) {
    client.setRequestHandler(ListRootsRequestSchema, async (req) => {
      record(report.serverRequests, req.method, req.params);
      return { roots: caps.roots };
    });
  }
  return client;
}

// listAll follows nextCursor until the last page.
async function listAll(fn, key, opts) {
  const items = [];
  let cursor;
  let pages = 0;
  do {
    const page = await fn(cursor ? { cursor } : undefined, opts);
    items.push(...(page[key] ?? []));
    cursor = page.nextCursor;
    pages++;
  } while (cursor && pages < 1000);
  return { [key]: items, pages };
}

// waitFor resolves once `count` notifications (or server requests) with
// method (and, when match is set, whose params' JSON contains it) have been
// seen in total, or rejects after timeoutMs.
function waitFor(table, method, count, timeoutMs, match) {
  const seen = () =>
    (table[method] ?? []).filter((p) => !match || JSON.stringify(p).includes(match)).length;
  return new Promise((resolve, reject) => {
    const w = {
      check() {
        const n = seen();
        if (n >= count) {
          clearTimeout(w.timer);
          waiters.splice(waiters.indexOf(w), 1);
          resolve({ method, count: n });
        }
      },
    };
    w.timer = setTimeout(() => {
      waiters.splice(waiters.indexOf(w), 1);
      const what = match ? `${method} containing ${JSON.stringify(match)}` : method;
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${count} ${what} (saw ${seen()})`));
    }, timeoutMs);
    waiters.push(w);
    w.check();
  });
}

async function runStep(client, step, opts, progress) {
  switch (step.op) {
    case "listTools":
      return listAll((p, o) => client.listTools(p, o), "tools", opts);
    case "listResources":
      return listAll((p, o) => client.listResources(p, o), "resources", opts);
    case "listResourceTemplates":
      return listAll((p, o) => client.listResourceTemplates(p, o), "resourceTemplates", opts);
    case "listPrompts":
      return listAll((p, o) => client.listPrompts(p, o), "prompts", opts);
    case "callTool": {
      const o = { ...opts };
      if (step.progress) {
        o.onprogress = (p) => progress.push(p);
        o.resetTimeoutOnProgress = true;
      }
      return client.callTool({ name: step.name, arguments: step.arguments ?? {} }, undefined, o);
    }
    case "readResource":
      return client.readResource({ uri: step.uri }, opts);
    case "getPrompt":
      return client.getPrompt({ name: step.name, arguments: step.arguments ?? {} }, opts);
    case "complete":
      return client.complete({ ref: step.ref, argument: step.argument, context: step.context }, opts);
    case "setLogLevel":
      return client.setLoggingLevel(step.level, opts);
    case "subscribe":
      return client.subscribeResource({ uri: step.uri }, opts);
    case "unsubscribe":
      return client.unsubscribeResource({ uri: step.uri }, opts);
    case "ping":
      return client.ping(opts);
    case "request": // any method, raw params and result
      return client.request({ method: step.method, params: step.params ?? {} }, ResultSchema, opts);
    case "rootsListChanged":
      return client.sendRootsListChanged();
    case "waitNotification":
      return waitFor(report.notifications, step.method, step.count ?? 1, step.timeoutMs ?? 10000, step.match);
    case "waitServerRequest":
      return waitFor(report.serverRequests, step.method, step.count ?? 1, step.timeoutMs ?? 10000, step.match);
    default:
      throw new Error(`unknown op ${JSON.stringify(step.op)}`);
  }
}

async function main() {
  const plan = await readStdin();
  const opts = { timeout: plan.timeoutMs ?? 30000 };
  const transport = makeTransport(plan);
  const client = makeClient(plan);
  try {
    await client.connect(transport, opts);
  } catch (e) {
    report.error = `connect: ${e?.message ?? e}`;
    process.stdout.write(JSON.stringify(report) + "\n");
    process.exit(2);
  }
  report.ok = true;
  report.sessionId = transport.sessionId ?? null;
  report.protocolVersion = transport.protocolVersion ?? null;
  report.serverInfo = client.getServerVersion() ?? null;
  report.serverCapabilities = client.getServerCapabilities() ?? null;
  report.instructions = client.getInstructions() ?? null;
  for (const step of plan.steps ?? []) {
    const progress = [];
    const t0 = performance.now();
    const r = { op: step.op };
    try {
      r.result = (await runStep(client, step, opts, progress)) ?? null;
      r.ok = true;
    } catch (e) {
      r.ok = false;
      r.error = e?.message ?? String(e);
      if (e?.code !== undefined) r.code = e.code;
    }
    if (step.progress) r.progress = progress;
    r.ms = Math.round(performance.now() - t0);
    report.steps.push(r);
  }
  if (plan.url && !plan.keepSession) {
    try {
      await transport.terminateSession();
    } catch (e) {
      report.terminateError = e?.message ?? String(e);
    }
  }
  await client.close();
  process.stdout.write(JSON.stringify(report) + "\n");
  process.exit(0);
}

main().catch((e) => {
  report.ok = false;
  report.error = e?.stack ?? String(e);
  process.stdout.write(JSON.stringify(report) + "\n");
  process.exit(1);
});
