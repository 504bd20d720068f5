"""What the model sees each turn: the context planned from a session's memory."""

from memchat.memory.budget import Budget, context_window
from memchat.memory.plan import STRATEGIES, ContextEntry, ContextPlan, Section, context_tokens

__all__ = ["STRATEGIES", "Budget", "ContextEntry", "ContextPlan", "Section", "context_tokens", "context_window"]
