"""MCP 2025-11-25 tasks, driven by the official Python SDK (mcp==1.30.0,
its `session.experimental` task client) against a stdio server or a
Streamable HTTP endpoint.

Usage: python python_core_tasks.py SERVER_COMMAND [ARG...]
       python python_core_tasks.py http://HOST:PORT/mcp [BEARER_TOKEN]
Exits non-zero (with the failed assertion) when a flow misbehaves.
"""

import asyncio
import contextlib
import sys

from mcp import ClientSession, StdioServerParameters, types
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamablehttp_client
from mcp.shared.exceptions import McpError


@contextlib.asynccontextmanager
async def connect(target, rest):
    if target.startswith("http://") or target.startswith("https://"):
        headers = {"Authorization": f"Bearer {rest[0]}"} if rest else None
        async with streamablehttp_client(target, headers=headers) as (read, write, _):
            yield read, write
    else:
        async with stdio_client(StdioServerParameters(command=target, args=rest)) as (read, write):
            yield read, write


async def expect_error(code, awaitable, what):
    try:
        await awaitable
    except McpError as e:
        assert e.error.code == code, f"{what}: expected {code}, got {e.error.code} ({e.error.message})"
        return
    raise AssertionError(f"{what}: expected error {code}, got a result")


async def confirm(context, params):
    """Answers the server's elicitation: accept, confirmed."""
    assert "Delete" in params.message, params
    return types.ElicitResult(action="accept", content={"confirm": True})


async def main(command, args):
    over_http = command.startswith("http://") or command.startswith("https://")
    async with connect(command, args) as (read, write):
        async with ClientSession(read, write, elicitation_callback=confirm) as session:
            init = await session.initialize()
            assert init.protocolVersion == "2025-11-25", init.protocolVersion
            tasks_cap = init.capabilities.tasks
            assert tasks_cap is not None, "capabilities.tasks (top level) missing"
            tools = {t.name: t for t in (await session.list_tools()).tools}
            assert tools["slow_compute"].execution.taskSupport == "optional"
            assert tools["failing_job"].execution.taskSupport == "required"
            tasks = session.experimental

            # A task runs to its result: tasks/result blocks until terminal,
            # while tasks/get keeps answering.
            created = await tasks.call_tool_as_task("slow_compute", {"seconds": 1, "label": "py"})
            task_id = created.task.taskId
            assert created.task.status == "working", created.task.status
            waiting = asyncio.create_task(tasks.get_task_result(task_id, types.CallToolResult))
            await asyncio.sleep(0.2)
            assert not waiting.done(), "tasks/result returned before the task ended"
            polled = await tasks.get_task(task_id)
            assert polled.status == "working", polled.status
            result = await waiting
            assert "py: computed" in result.content[0].text, result
            assert (await tasks.get_task(task_id)).status == "completed"

            # A tool error (isError) fails the task in this revision.
            failing = await tasks.call_tool_as_task("failing_job", {})
            async for status in tasks.poll_task(failing.task.taskId):
                last = status
            assert last.status == "failed", last.status
            failed_result = await tasks.get_task_result(failing.task.taskId, types.CallToolResult)
            assert failed_result.isError, failed_result

            # Pagination over 25+ tasks.
            ids = {task_id, failing.task.taskId}
            for n in range(25):
                t = await tasks.call_tool_as_task("slow_compute", {"seconds": 0, "label": f"n{n}"})
                ids.add(t.task.taskId)
            seen, cursor, pages = set(), None, 0
            while True:
                page = await tasks.list_tasks(cursor)
                pages += 1
                seen.update(t.taskId for t in page.tasks)
                cursor = page.nextCursor
                if not cursor:
                    break
            assert ids <= seen, f"listing missed {len(ids - seen)} tasks"
            assert pages >= 1

            # Cancel a running task: cancelled before the answer.
            running = await tasks.call_tool_as_task("slow_compute", {"seconds": 60, "label": "cancel-me"})
            cancelled = await tasks.cancel_task(running.task.taskId)
            assert cancelled.status == "cancelled", cancelled.status
            assert (await tasks.get_task(running.task.taskId)).status == "cancelled"
            # Cancelling a terminal task, and an unknown id, are -32602.
            await expect_error(-32602, tasks.cancel_task(running.task.taskId), "cancel terminal")
            await expect_error(-32602, tasks.get_task("no-such-task"), "get unknown")
            # A task-required tool called without a task is -32601.
            await expect_error(-32601, session.call_tool("failing_job", {}), "required tool without a task")

            if over_http:
                # An input request: tasks/result carries the server's
                # elicitation, the client's answer reaches the task's worker.
                asking = await tasks.call_tool_as_task("confirm_delete", {"path": "/tmp/x"})
                answered = await tasks.get_task_result(asking.task.taskId, types.CallToolResult)
                assert "/tmp/x: deleted" in answered.content[0].text, answered
                assert (await tasks.get_task(asking.task.taskId)).status == "completed"
    print("python 2025-11-25 task flows: ok")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2:]))
