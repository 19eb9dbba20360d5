"""Live events: what changed, published on per-asset channels for SSE, WebSocket and server code."""
