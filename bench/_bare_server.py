"""The baseline of bench/startup.py: a bare MCPServer with one trivial tool, over stdio."""

from mcp.server import MCPServer

server = MCPServer("bare")


@server.tool()
def ping() -> str:
    """Answer pong."""
    return "pong"


if __name__ == "__main__":
    server.run()
