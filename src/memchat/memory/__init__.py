"""What the model sees each turn: the context built from a session's history."""

from memchat.memory.context import ContextEntry, build_context, context_tokens

__all__ = ["ContextEntry", "build_context", "context_tokens"]
