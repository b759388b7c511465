// MCP 2025-11-25 tasks through the official TypeScript SDK
// (@modelcontextprotocol/sdk 1.32.2, client.experimental.tasks) against a
// stdio server: a tool call run as a task, streamed to its result.
//
// Usage: node ts_core_tasks.mjs SERVER_COMMAND [ARG...]  (run from a
// directory whose node_modules holds the SDK). Exits non-zero on failure.
import assert from 'node:assert/strict';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';

const [command, ...args] = process.argv.slice(2);
const client = new Client({ name: 'pmcp-tasks-tests', version: '0' }, { capabilities: {} });
await client.connect(new StdioClientTransport({ command, args }));
assert.ok(client.getServerCapabilities()?.tasks, 'capabilities.tasks missing');

const kinds = [];
let result;
const stream = client.experimental.tasks.callToolStream(
  { name: 'slow_compute', arguments: { seconds: 1, label: 'ts' } },
  undefined,
  { task: { ttl: 60000 } },
);
for await (const message of stream) {
  kinds.push(message.type);
  if (message.type === 'error') throw message.error;
  if (message.type === 'result') result = message.result;
}
assert.equal(kinds[0], 'taskCreated', `stream: ${kinds.join(', ')}`);
assert.equal(kinds.at(-1), 'result');
assert.match(result.content[0].text, /ts: computed/);
await client.close();
console.log(`typescript 2025-11-25 task stream: ok (${kinds.join(' -> ')})`);
