"""The providers of one worker, by name, made on first use (in the worker's event loop)."""

from __future__ import annotations

from agents.ai.anthropic import AnthropicProvider
from agents.ai.bedrock import BedrockProvider
from agents.ai.echo import EchoProvider
from agents.ai.openai import OpenAIProvider
from agents.ai.provider import Provider
from agents.exceptions import ProviderError
from schemas.ai import PROVIDERS
from streams.settings import Settings


class Providers:
    """Every provider awe ships, created lazily and closed together."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._made: dict[str, Provider] = {}

    def get(self, name: str) -> Provider:
        """The provider called ``name``; ``unknown_provider`` (non-retryable) for any other name."""
        provider = self._made.get(name)
        if provider is None:
            provider = self._make(name)
            self._made[name] = provider
        return provider

    def _make(self, name: str) -> Provider:
        s = self._settings
        if name == "openai":
            return OpenAIProvider()
        if name == "anthropic":
            return AnthropicProvider()
        if name == "bedrock":
            return BedrockProvider(
                region=s.bedrock_region,
                profile=s.bedrock_profile,
                endpoint_url=s.bedrock_endpoint_url,
                threads=s.ai_concurrency,
            )
        if name == "echo":
            return EchoProvider()
        raise ProviderError(
            f"unknown provider {name!r}; known providers: {', '.join(PROVIDERS)}",
            code="unknown_provider",
            retryable=False,
        )

    async def aclose(self) -> None:
        """Close every provider made so far."""
        for provider in self._made.values():
            await provider.aclose()
