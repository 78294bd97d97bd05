#!/usr/bin/env python3
"""An MCP server on stdio with the official Python SDK: notes kept in memory.

Tools: `add_note(title, body)`, `list_notes()`, `read_note(title)`.
Declare it under `[[agents.mcp_servers]]` (see examples/plugins/troupe.toml) and call
its tools with the `mcp_tool` agent kind. Needs `python3 -m pip install mcp`.
"""

import sys

try:
    # mcp 2.x renamed FastMCP to MCPServer; 1.x has only FastMCP.
    from mcp.server.mcpserver import MCPServer as Server
except ImportError:
    try:
        from mcp.server.fastmcp import FastMCP as Server
    except ImportError:
        print(
            "notes_server needs the MCP Python SDK: python3 -m pip install mcp",
            file=sys.stderr,
        )
        sys.exit(1)

server = Server("notes")
notes: dict[str, str] = {}


@server.tool()
def add_note(title: str, body: str) -> str:
    """Adds (or replaces) the note called `title`."""
    notes[title] = body
    return f"saved {title} ({len(notes)} notes)"


@server.tool()
def list_notes() -> str:
    """The titles of all notes, one a line."""
    return "\n".join(sorted(notes)) if notes else "(no notes)"


@server.tool()
def read_note(title: str) -> str:
    """The body of the note called `title`."""
    if title not in notes:
        raise ValueError(f"no note called {title}")
    return notes[title]


if __name__ == "__main__":
    server.run()
