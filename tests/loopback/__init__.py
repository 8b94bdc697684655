"""Loopback servers speaking the real wire protocols of OpenAI, Anthropic and Bedrock, for tests and benchmarks.

Driven through the official SDKs, so their parsing, streaming, retry and error paths run for real. They never
leave 127.0.0.1.
"""

from tests.loopback.anthropic import AnthropicServer
from tests.loopback.bedrock import BedrockServer
from tests.loopback.openai import OpenAIServer
from tests.loopback.script import Reply, Request
from tests.loopback.server import LoopbackServer

__all__ = ["AnthropicServer", "BedrockServer", "LoopbackServer", "OpenAIServer", "Reply", "Request"]
