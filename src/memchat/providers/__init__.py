"""Model providers: the ``Provider`` port and its adapters (imported lazily by ``factory``)."""

from memchat.providers.base import ChatOptions, Provider

__all__ = ["ChatOptions", "Provider"]
