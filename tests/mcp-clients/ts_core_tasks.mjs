// MCP 2025-11-25 tasks through the official TypeScript SDK
// (@modelcontextprotocol/sdk 1.32.2, client.experimental.tasks) against a
// stdio server or a Streamable HTTP endpoint: a tool call run as a task,
// streamed to its result; over HTTP also polled, listed, cancelled, and a
// task's input request answered.
//
// Usage: node ts_core_tasks.mjs SERVER_COMMAND [ARG...]
//        node ts_core_tasks.mjs http://HOST:PORT/mcp [BEARER_TOKEN]
// (run from a directory whose node_modules holds the SDK). Exits non-zero
// on failure.
import assert from 'node:assert/strict';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';

const [command, ...args] = process.argv.slice(2);
const overHttp = command.startsWith('http://') || command.startsWith('https://');
const client = new Client(
  { name: 'pmcp-tasks-tests', version: '0' },
  { capabilities: { elicitation: { form: {} } } },
);
// The server's input requests (over HTTP, on the tasks/result stream).
let elicited = 0;
client.setRequestHandler(ElicitRequestSchema, async (request) => {
  elicited += 1;
  assert.match(request.params.message, /Delete/);
  return { action: 'accept', content: { confirm: true } };
});
const transport = overHttp
  ? new StreamableHTTPClientTransport(new URL(command), {
      requestInit: args[0] ? { headers: { Authorization: `Bearer ${args[0]}` } } : undefined,
    })
  : new StdioClientTransport({ command, args });
await client.connect(transport);
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
if (overHttp) {
  // Poll, list and cancel through the SDK's task client.
  const tasks = client.experimental.tasks;
  const stream2 = tasks.callToolStream(
    { name: 'slow_compute', arguments: { seconds: 60, label: 'ts-cancel' } },
    undefined,
    { task: { ttl: 60000 } },
  );
  let taskId;
  for await (const message of stream2) {
    if (message.type === 'taskCreated') {
      taskId = message.task.taskId;
      break;
    }
  }
  assert.ok(taskId, 'a task was created');
  const polled = await tasks.getTask(taskId);
  assert.equal(polled.status, 'working');
  // Every page: the owner may hold more tasks than one page (an anonymous
  // owner shared with other clients of the same server).
  let listed = false;
  let cursor;
  do {
    const page = await tasks.listTasks(cursor);
    listed ||= page.tasks.some((t) => t.taskId === taskId);
    cursor = page.nextCursor;
  } while (cursor && !listed);
  assert.ok(listed, 'listed');
  const cancelled = await tasks.cancelTask(taskId);
  assert.equal(cancelled.status, 'cancelled');
  kinds.push('cancelled');

  // An input request answered: the elicitation arrives while the stream
  // waits on tasks/result, the answer reaches the task's worker.
  let answered;
  for await (const message of tasks.callToolStream(
    { name: 'confirm_delete', arguments: { path: '/tmp/x' } },
    undefined,
    { task: { ttl: 60000 } },
  )) {
    if (message.type === 'error') throw message.error;
    if (message.type === 'result') answered = message.result;
  }
  assert.equal(elicited, 1, 'one elicitation');
  assert.match(answered.content[0].text, /\/tmp\/x: deleted/);
  kinds.push('input answered');
}
await client.close();
console.log(`typescript 2025-11-25 task stream: ok (${kinds.join(' -> ')})`);
