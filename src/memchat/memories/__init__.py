"""Long-term memory: what the agent learns about its user, kept across sessions, reviewable,
and recalled into every new chat (see ``service.py``; learning after a turn: ``learner.py``)."""

from memchat.memories.service import MemoryService

__all__ = ["MemoryService"]
