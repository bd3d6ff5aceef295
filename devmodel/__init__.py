"""devmodel: a stand-in OpenAI-compatible model provider (chat completions) for `make dev`, tests and benchmarks."""

from devmodel.server import DEFAULT_API_KEY, create_app

__all__ = ["DEFAULT_API_KEY", "create_app"]
