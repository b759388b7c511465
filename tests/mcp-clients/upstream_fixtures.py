"""An upstream MCP server for `pmcp-tasks gateway`: written with the
official Python SDK (FastMCP, mcp==1.30.0), with no task support of its
own, offering the fixture tools the conformance suite's tasks scenarios
call. Run over stdio by the gateway, or, with UPSTREAM_HTTP_PORT set, over
Streamable HTTP on that loopback port.

With UPSTREAM_RECORD set, it appends one line per event to that file
("ready PID" when a process starts, then "start TOOL LABEL", "in PID TOOL
LABEL", "cancelled TOOL LABEL", "done TOOL LABEL"), so a test can see what
reached it (a call, the `notifications/cancelled` of a call) and which
process to kill.
"""

import asyncio
import os

import anyio
from pydantic import BaseModel

from mcp import types
from mcp.server.fastmcp import Context, FastMCP
from mcp.shared.exceptions import McpError

server = FastMCP("upstream-fixtures")


def record(event: str) -> None:
    path = os.environ.get("UPSTREAM_RECORD")
    if path:
        with open(path, "a", encoding="utf-8") as out:
            out.write(event + "\n")


async def work(seconds: float, tool: str, label: str) -> None:
    """Sleeps, recording a cancellation if one comes."""
    try:
        await anyio.sleep(max(0.0, min(seconds, 3600.0)))
    except anyio.get_cancelled_exc_class():
        record(f"cancelled {tool} {label}")
        raise


class Confirm(BaseModel):
    confirm: bool = False


class Answer(BaseModel):
    name: str = ""
    confirm: bool = False


class UserName(BaseModel):
    name: str


@server.tool()
def greet(name: str = "world") -> str:
    """Greets by name, at once."""
    record(f"in {os.getpid()} greet {name}")
    return f"Hello, {name}!"


@server.tool()
async def slow_compute(ctx: Context, seconds: float = 1.0, label: str = "job") -> str:
    """Works for `seconds` seconds, reporting progress, then answers."""
    record(f"in {os.getpid()} slow_compute {label}")
    record(f"start slow_compute {label}")
    await ctx.report_progress(0, None, f"computing {label}")
    await work(seconds, "slow_compute", label)
    record(f"done slow_compute {label}")
    return f"{label}: computed after {seconds} s"


@server.tool()
async def flood_progress(ctx: Context, count: int = 1000) -> str:
    """Reports progress `count` times as fast as it can ("item N of
    COUNT"), as a loop over many items reporting each does, then answers."""
    count = max(0, min(count, 1_000_000))
    for i in range(1, count + 1):
        await ctx.report_progress(i, count, f"item {i} of {count}")
    return f"flooded {count}"


def base64_like(size: int) -> str:
    """`size` bytes cycling through the base64 alphabet (what the Rust
    harness's `payloads::base64_like` makes)."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    return (alphabet * (size // 64 + 1))[:size]


# Unstructured: FastMCP would otherwise send the content a second time as
# `structuredContent`, doubling the answer's line.
@server.tool(structured_output=False)
def large_result(
    kib: int = 0, text_kib: int = 0, image_kib: int = 0
) -> list[types.TextContent | types.ImageContent]:
    """Answers as a tool returning a document or an image does: a text of
    `kib` KiB of "x" (its answer's line about that long), else of
    `text_kib` KiB of base64-like text, after an image block of
    `image_kib` KiB of base64 when asked."""
    clamp = lambda n: max(0, min(n, 256 * 1024)) * 1024
    content: list[types.TextContent | types.ImageContent] = []
    if image_kib:
        content.append(
            types.ImageContent(type="image", mimeType="image/png", data=base64_like(clamp(image_kib)))
        )
    text = "x" * clamp(kib) if kib else base64_like(clamp(text_kib))
    content.append(types.TextContent(type="text", text=text))
    return content


@server.tool(structured_output=False)
def echo(text: str = "") -> str:
    """Answers with its argument, whatever its size."""
    return text


@server.tool()
async def failing_job() -> str:
    """Runs for a second, then fails as a tool (isError)."""
    await anyio.sleep(1.0)
    raise RuntimeError("the job failed")


@server.tool()
async def protocol_error_job() -> str:
    """Fails with a JSON-RPC error (answered by the handler below)."""
    raise RuntimeError("not reached")


@server.tool()
async def confirm_delete(ctx: Context, filename: str = "", path: str = "") -> str:
    """Asks the user to confirm, then answers (the file is `filename`, as
    the conformance suite names it, or `path`)."""
    filename = filename or path or "the file"
    answer = await ctx.elicit(f"Delete {filename}?", Confirm)
    if answer.action == "accept" and answer.data.confirm:
        return f"{filename}: deleted"
    return f"{filename}: kept"


@server.tool()
async def multi_input(ctx: Context) -> str:
    """Asks two questions at once, then answers."""
    first, second = await asyncio.gather(
        ctx.elicit("First question?", Answer),
        ctx.elicit("Second question?", Answer),
    )
    return f"answers: {first.action}, {second.action}"


@server.tool()
async def test_tool_with_task(ctx: Context) -> str:
    """Asks for a user name, then greets."""
    record("start test_tool_with_task")
    try:
        answer = await ctx.elicit("What is your name?", UserName)
    except anyio.get_cancelled_exc_class():
        record("cancelled test_tool_with_task")
        raise
    name = answer.data.name if answer.action == "accept" else "stranger"
    return f"Hello, {name}!"


@server.tool()
async def summarize(ctx: Context, text: str = "") -> str:
    """Asks the client for its roots and its model's summary of `text`
    (sampling) at once, then answers with both."""
    message = types.SamplingMessage(
        role="user", content=types.TextContent(type="text", text=f"Summarize: {text}")
    )
    roots, reply = await asyncio.gather(
        ctx.session.list_roots(),
        ctx.session.create_message(messages=[message], max_tokens=50),
    )
    names = ",".join(root.name or str(root.uri) for root in roots.roots)
    return f"summary: {reply.content.text} (roots: {names})"


@server.tool()
async def learn_tool(ctx: Context, name: str) -> str:
    """Adds a tool `name` (it greets from `name`) to this process's tools
    and says so (`notifications/tools/list_changed`)."""

    def learned() -> str:
        return f"Hello from {name}!"

    server.add_tool(learned, name=name, description=f"Greets from {name}.")
    await ctx.session.send_tool_list_changed()
    return f"learned {name}"


# FastMCP turns every exception of a tool into a result with isError; a
# JSON-RPC error needs a handler of its own.
_call_tool = server._mcp_server.request_handlers[types.CallToolRequest]


async def _call_tool_or_fail(request: types.CallToolRequest) -> types.ServerResult:
    if request.params.name == "protocol_error_job":
        raise McpError(
            types.ErrorData(
                code=-32603,
                message="protocol_error_job: internal failure",
                data={"reason": "the job crashed"},
            )
        )
    return await _call_tool(request)


server._mcp_server.request_handlers[types.CallToolRequest] = _call_tool_or_fail

if __name__ == "__main__":
    record(f"ready {os.getpid()}")
    port = os.environ.get("UPSTREAM_HTTP_PORT")
    if port:
        # Streamable HTTP at http://127.0.0.1:PORT/mcp instead of stdio.
        server.settings.host = "127.0.0.1"
        server.settings.port = int(port)
        server.run("streamable-http")
    else:
        server.run("stdio")
