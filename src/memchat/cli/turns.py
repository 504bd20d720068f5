"""``memchat chat`` (the REPL) and ``memchat ask`` (one turn, streamed to stdout).

This is ``ask``'s whole path besides ``main``: it imports no terminal UI (rich,
prompt_toolkit) and none of the other commands; the agent, store and provider are imported
when the command runs.

``--memory``, ``--context-window`` and ``--recall`` (both commands) choose the memory strategy,
the window to plan for and whether recall searches the user's other sessions; ``--no-memories``
and ``--learn`` switch long-term memory off and choose how it learns; ``_agent`` builds the
``Agent`` from them (``sessions context`` uses it too). ``--incognito`` marks the session
incognito before the turn (nothing learned from it, nothing recalled into it).

A reply that used long-term memories or turns of the user's other chats is marked on stderr
(one dim line; stdout stays the reply), and so is what the user asked it to remember or forget.

``ask -s NAME --system TEXT`` sets the persona only when it creates NAME: a one-shot
``ask`` never changes an existing session except by appending its turn (so a failed turn
leaves the session exactly as it was). To change a persona, use ``/system`` in
``memchat chat`` or ``memchat chat -s NAME --system TEXT``.

The question, as ``llm`` takes it: the words given, or stdin (``-`` or no words); with both
words and piped text (``cat note.txt | memchat ask "When is the meeting?"``), the piped text is
the context and the words the question, in one message. ``-c``/``--continue`` continues the
most recently used session. A new session is a draft until its turn stores it: a failed ``ask``
leaves no session behind.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from memchat.cli.cli_strings import t
from memchat.cli.common import UsageError, err, settings_for
from memchat.cli.output import tool_line

if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence

    from memchat.agent import Agent
    from memchat.config import Settings
    from memchat.domain import Attachment, Reply, SessionInfo
    from memchat.service import Conversations


#: seconds ``memchat ask`` waits for another process's reply in the same session
ASK_WAITS = 300.0
#: seconds `memchat ask` gives memory upkeep (a summary its turn made due) after printing the reply
ASK_UPKEEP_WAIT = 60.0


def memory_settings(args: argparse.Namespace, **extra: object) -> Settings:
    """The settings of a command with the memory flags (``--memory``, ``--context-window``)."""
    return settings_for(
        args,
        memory=getattr(args, "memory", None),
        context_window=getattr(args, "context_window", None),
        recall=getattr(args, "recall", None),
        memories=getattr(args, "memories", None),
        learn=getattr(args, "learn", None),
        tools=getattr(args, "tools", None),
        tool=getattr(args, "tool", None),
        mcp=getattr(args, "mcp", None),
        max_steps=getattr(args, "max_steps", None),
        seed=getattr(args, "seed", None),
        timezone=getattr(args, "timezone", None),
        date_line=getattr(args, "date_line", None),
        **extra,
    )


def _agent(settings: Settings) -> Agent:
    from memchat.factory import make_agent

    agent: Agent = make_agent(settings)
    for source in agent.tools.sources:  # an MCP server that fails or restarts: one line on stderr
        if hasattr(source, "report"):
            source.report = err
    return agent


def cmd_chat(args: argparse.Namespace) -> int:
    settings = memory_settings(args, system=args.system)
    from memchat.cli.repl import run_repl

    agent = _agent(settings)
    try:
        return int(
            run_repl(
                agent,
                settings,
                session=args.session,
                system=args.system,
                show_context=args.show_context,
                resume=args.resume,
                incognito=args.incognito,
            )
        )
    finally:
        agent.close()


def _question(args: argparse.Namespace) -> str:
    """The message: the words, stdin, or — words given and text piped in — the piped text (the
    context) followed by the words (the question), as ``llm`` combines them. With ``-a -``
    stdin is an attachment: the question is the words alone (none: the file alone)."""
    words: list[str] = args.question
    if "-" in (getattr(args, "attach", None) or ()):
        if words == ["-"]:
            raise UsageError(f"ask: {t('cli.stdin_twice')}")
        return " ".join(words)
    stdin = sys.stdin
    piped = stdin is not None and not stdin.isatty()
    if words == ["-"] or not words:
        if not words and not piped:
            raise UsageError(f"ask: {t('cli.no_question')}")
        return "" if stdin is None else stdin.read().rstrip("\r\n")
    question = " ".join(words)
    if piped:
        assert stdin is not None
        context = stdin.read().strip("\r\n")
        if context.strip():
            return f"{context}\n\n{question}"
    return question


def _attachments(args: argparse.Namespace, limit: int) -> list[Attachment]:
    """The files of ``-a``, read and checked before anything is sent (``-`` is stdin's bytes)."""
    from memchat.attachments import from_bytes, from_path
    from memchat.attachments.load import too_large

    found = []
    for path in getattr(args, "attach", None) or ():
        if path != "-":
            found.append(from_path(path, limit=limit))
            continue
        stream = sys.stdin.buffer if sys.stdin is not None else None
        data = stream.read(limit + 1) if stream is not None else b""
        if len(data) > limit:
            raise too_large("stdin", len(data), limit)
        first = from_bytes("stdin", data, limit=limit)
        suffix = {"image/png": ".png", "image/jpeg": ".jpg", "image/gif": ".gif", "image/webp": ".webp"}
        name = "stdin" + suffix.get(first.media_type, ".pdf" if first.media_type == "application/pdf" else ".txt")
        found.append(from_bytes(name, data, limit=limit))
    return found


def cmd_ask(args: argparse.Namespace) -> int:
    text = _question(args)
    settings = memory_settings(args, system=args.system, vision=getattr(args, "vision", None))
    files = _attachments(args, settings.max_attachment)
    from memchat.service import Conversations

    chats = Conversations(
        _agent(settings).configured(
            auto_approve=bool(getattr(args, "yes", False)),  # no one to ask: side effects need --yes
            wait_for_turn=ASK_WAITS,  # scripts asking one session at once queue up instead of failing
            warm_cache=False,  # no next turn in this process
        )
    )
    try:
        info = _ask_session(chats, args)
        if args.incognito and not chats.agent.is_incognito(info):
            info = chats.set_incognito(info, True)
        # a new session (a draft) is stored with this turn, and removed again if the turn fails
        code, info = _stream(chats.agent, info, text, files)
        # a summary this turn made due (and the session's title) is written now, after the reply was
        # printed: the next `memchat ask` is another process, which would only find it due again
        # (bounded: what is left is found due, and written, after the next turn's reply)
        chats.agent.wait_for_summaries(ASK_UPKEEP_WAIT)
    finally:
        chats.agent.close()  # waits (bounded) for what is still being learned from this turn
    if chats.agent.semantic is not None and not chats.agent.is_incognito(info):
        from memchat.cli.memories import start_background_index

        start_background_index(settings)  # this turn's messages get their vectors after we exit
    return code


def _ask_session(chats: Conversations, args: argparse.Namespace) -> SessionInfo:
    if getattr(args, "resume", False):
        if args.session is not None:
            raise UsageError(f"ask: {t('cli.continue_and_session')}")
        latest = chats.latest()
        if latest is not None:
            if args.system is not None and args.system != latest.persona:
                err(t("cli.persona_kept", name=latest.name))
            return latest
        return chats.draft()  # nothing to continue yet: a new session
    if args.session is None:
        return chats.draft()
    existing = chats.find(args.session)
    if existing is None:
        return chats.draft(args.session)  # persona: --system, else the config's
    if args.system is not None and args.system != existing.persona:
        err(t("cli.persona_kept", name=existing.name))
    return existing


def _stream(agent: Agent, info: SessionInfo, text: str, files: Sequence[Attachment] = ()) -> tuple[int, SessionInfo]:
    out = sys.stdout
    last = "\n"
    turn = agent.stream(info, text, attachments=files)
    try:
        for chunk in turn:
            if chunk.text:
                out.write(chunk.text)
                out.flush()
                last = chunk.text[-1]
            elif chunk.tool_call is not None or chunk.tool_result is not None:
                err(tool_line(chunk))  # what the agent does goes to stderr: stdout stays the reply
    finally:
        # on Ctrl-C between chunks this stores the partial reply as interrupted
        turn.close()
        if last != "\n":
            out.write("\n")
            out.flush()
    if turn.reply is not None:
        _marks(turn.reply, turn.session.name)
    return 0, turn.session


def _marks(reply: Reply, session: str) -> None:
    """What the reply used and what the user asked it to remember, dim on stderr."""
    from memchat.cli.context_text import learned_lines, used_line

    lines = learned_lines(reply.remembered)
    used = used_line(reply.memories, reply.recalled)
    if used is not None:
        lines.append(used + t("mark.ask_hint", session=session))
    dim = sys.stderr is not None and sys.stderr.isatty()
    for line in lines:
        sys.stderr.write(f"\x1b[2m{line}\x1b[0m\n" if dim else line + "\n")
    sys.stderr.flush()
