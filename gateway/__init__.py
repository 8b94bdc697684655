"""The Starlette gateway: REST and the WebSocket bridge to the topics (built by its own issue).

It reaches the engine only through topics, never by importing ``agents``.
"""
