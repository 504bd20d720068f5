"""Everything the REPL shows, written through one injectable rich ``Console``.

On a terminal a reply streams inside a transient ``Live`` (only its last screenful is
redrawn) and, when it ends or is stopped, is printed once for good as markdown. Elsewhere
(a pipe, a file, tests) the text chunks are written as they arrive, nothing else.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Collection, Iterable, Sequence
from types import TracebackType
from typing import Any

from rich import box
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.live import Live
from rich.markdown import Markdown
from rich.segment import Segment
from rich.table import Table
from rich.text import Text

from memchat.cli import context_text
from memchat.cli.cli_strings import t as cli_t
from memchat.cli.output import tool_line
from memchat.cli.repl_strings import t
from memchat.domain import (
    Chunk,
    ImageRecord,
    Memory,
    Message,
    Role,
    SessionInfo,
    Status,
    Summary,
    Version,
    Versions,
    human_size,
)
from memchat.search import Found
from memchat.serialization import ContextView, covered

ROLE_STYLES = {Role.SYSTEM: "magenta", Role.USER: "green", Role.ASSISTANT: "cyan", Role.TOOL: "yellow"}
#: seconds between redraws of a streaming reply on a terminal
REFRESH_EVERY = 1 / 12


class _Tail:
    """Renders only the last lines of a renderable that fit the screen, so a long reply
    can be redrawn while it streams (rich cannot redraw lines scrolled off the screen)."""

    def __init__(self, renderable: RenderableType) -> None:
        self.renderable = renderable

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        lines = console.render_lines(self.renderable, options.update(height=None), pad=False)
        keep = max(1, console.size.height - 1)
        for line in lines[-keep:]:
            yield from line
            yield Segment.line()


class _NoEcho:
    """The terminal does not echo what is typed while a reply streams: its echo of Ctrl-C
    ("^C") moved the cursor under the live view, whose last redraw then left a copy of the
    reply's first line behind ("Assistant:" twice), and typed-ahead text landed inside the view.
    Ctrl-C still interrupts (only ECHO and ECHOCTL are switched off, and back on after)."""

    def __init__(self) -> None:
        self._saved: list[Any] | None = None
        self._fd = -1

    def __enter__(self) -> None:
        try:
            import termios

            fd = sys.stdin.fileno()
            if not os.isatty(fd):
                return
            saved = termios.tcgetattr(fd)
            quiet = list(saved)
            quiet[3] = quiet[3] & ~(termios.ECHO | termios.ECHOCTL)
            termios.tcsetattr(fd, termios.TCSANOW, quiet)
            self._saved, self._fd = saved, fd
        except (ImportError, AttributeError, ValueError, OSError):  # no tty (tests, Windows, a pipe)
            self._saved = None

    def __exit__(self, *exc: object) -> None:
        if self._saved is None:
            return
        import termios

        with contextlib.suppress(OSError):
            termios.tcsetattr(self._fd, termios.TCSANOW, self._saved)
        self._saved = None


class ReplyView:
    """Shows one streaming reply: ``with view: view.add(chunk)…``. Leaving the block by an
    exception (Ctrl-C, a failed call) keeps on screen what was shown."""

    def __init__(self, console: Console, *, markdown: bool) -> None:
        self.console = console
        self.markdown = markdown
        self.text: list[str] = []
        self.reasoning: list[str] = []
        self._live: Live | None = None
        self._drawn_at = 0.0
        self._written = False  # plain mode: something is on the current line
        self._in_reasoning = False
        self._no_echo = _NoEcho()

    def __enter__(self) -> ReplyView:
        if self.markdown:
            self._no_echo.__enter__()
            self._live = Live(
                self._renderable(final=False),
                console=self.console,
                auto_refresh=False,
                transient=True,
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self._live.start(refresh=True)
            self._drawn_at = time.monotonic()
        return self

    def add(self, chunk: Chunk) -> None:
        if chunk.tool_call is not None or chunk.tool_result is not None:
            self._tool(chunk)
            return
        if chunk.reasoning:
            self.reasoning.append(chunk.reasoning)
        if chunk.text:
            self.text.append(chunk.text)
        if self._live is not None:
            now = time.monotonic()
            if (chunk.text or chunk.reasoning) and now - self._drawn_at >= REFRESH_EVERY:
                self._drawn_at = now
                self._live.update(self._renderable(final=False), refresh=True)
            return
        if chunk.reasoning:
            self._write(chunk.reasoning, style="dim")
            self._in_reasoning = True
        if chunk.text:
            if self._in_reasoning:
                self.console.out("")
                self._in_reasoning = False
            self._write(chunk.text)

    def _tool(self, chunk: Chunk) -> None:
        """A line for a tool call about to run, and one for its result (errors in red). The live
        reply view is put away while the tool runs (it may ask the user for approval), and the
        text streamed before the call stays on screen."""
        if self._live is not None:
            self._live.stop()
            self._live = None
            if self.text or self.reasoning:
                self.console.print(self._renderable(final=True))
            self.text, self.reasoning = [], []
        if self._written:
            self.console.out("")
            self._written = False
        error = chunk.tool_result is not None and chunk.tool_result.error
        self.console.print(Text(tool_line(chunk), style="red" if error else "dim cyan"), highlight=False)
        if chunk.tool_result is not None and self.markdown:
            self.__enter__()  # the next call's reply streams in a fresh view

    def _write(self, text: str, style: str | None = None) -> None:
        if not self._written:
            self.console.out(t("repl.assistant"), end="", style="bold", highlight=False)
            self._written = True
        self.console.out(text, end="", style=style, highlight=False)

    def _renderable(self, *, final: bool) -> RenderableType:
        parts: list[RenderableType] = [Text(t("repl.assistant").strip(), style="bold")]
        if self.reasoning:
            parts.append(Text("".join(self.reasoning).strip(), style="dim"))
        if self.text:
            parts.append(Markdown("".join(self.text)))
        elif not final:
            parts.append(Text("…", style="dim"))
        group = Group(*parts)
        return group if final else _Tail(group)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if self._live is not None:
                self._live.stop()
                self._live = None
                if self.text or self.reasoning:
                    self.console.print(self._renderable(final=True))
            elif self._written:
                self.console.out("")
        finally:
            self._no_echo.__exit__()


class Renderer:
    """The REPL's output: banner, notes, errors, replies, context/history/session tables."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console()

    @property
    def markdown(self) -> bool:
        return self.console.is_terminal and not self.console.is_dumb_terminal

    def reply(self) -> ReplyView:
        return ReplyView(self.console, markdown=self.markdown)

    def line(self, text: str, style: str | None = None, *, soft: bool = False) -> None:
        """One line of text, on a terminal wrapped at words to its width (never inside a word);
        ``soft``, or output that is not a terminal: one line as it is (an error or a path to copy)."""
        self.console.print(Text(text, style=style or ""), soft_wrap=soft or not self.console.is_terminal)

    def info(self, text: str, *, soft: bool = False) -> None:
        self.line(text, soft=soft)

    def note(self, text: str) -> None:
        self.line(text, "dim")

    def error(self, text: str) -> None:
        self.line(t("repl.error", line=text), "bold red", soft=True)

    def banner(self, info: SessionInfo, provider: str, model: str, *, resumed: bool) -> None:
        if info.draft:
            key = "repl.banner_named" if info.name else "repl.banner_new"
        else:
            key = "repl.banner_resumed" if resumed else "repl.banner"
        self.line(t(key, session=info.label, count=info.message_count, provider=provider, model=model), "bold")
        self.note(t("repl.banner_help"))

    def context(self, view: ContextView) -> None:
        """What a call sends: each message numbered with its role, kind and tokens (the system
        message broken into persona, summary, pinned and recalled parts, each with why it is
        there), what was left out, and the budget gauge."""
        entries = view["entries"]
        title = t("repl.context_title", strategy=view["strategy"], count=len(entries))
        self.console.rule(Text(title), style="dim")
        if not entries:
            self.note(cli_t("ctx.empty"))
        else:
            table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, expand=False)
            table.add_column("#", justify="right", style="dim")
            table.add_column(t("repl.col_message"), justify="right", style="dim")
            table.add_column(t("repl.col_role"))
            table.add_column(t("repl.col_kind"))
            table.add_column(t("repl.col_tokens"), justify="right")
            table.add_column(t("repl.col_content"), overflow="fold")
            for e in entries:
                style = ROLE_STYLES.get(Role(e["role"]))
                number = "" if e["message"] is None else str(e["message"])
                kind = context_text.kind(e["kind"])
                sections = context_text.entry_sections(view, e)
                if sections:
                    table.add_row(str(e["index"]), number, e["role"], kind, str(e["tokens"]), Text(""), style=style)
                    for sec in sections:
                        content = Text()
                        note = context_text.section_note(sec, view["session"])
                        found = context_text.items(sec)
                        if note:
                            content.append(note + ("\n" if not found else ""), style="italic")
                        if not found:
                            content.append(sec["text"])
                        part = "↳ " + context_text.kind(sec["kind"])
                        table.add_row("", "", "", part, str(sec["tokens"]), content, style=style)
                        for item in found:  # each memory and past turn: why it was chosen, its text
                            why = context_text.item_line(item, view["session"], with_tokens=False)
                            content = Text(why + "\n", style="italic")
                            content.append(item["text"])
                            item_kind = "  · " + context_text.kind(item["kind"])
                            table.add_row("", "", "", item_kind, str(item["tokens"]), content, style=style)
                else:
                    table.add_row(
                        str(e["index"]), number, e["role"], kind, str(e["tokens"]), Text(e["content"]), style=style
                    )
            self.console.print(table)
        for line in context_text.footer(view):
            self.note(line)
        gauge, window = context_text.budget_lines(view)
        used = context_text.percent(view["budget"]["used"], view["budget"]["limit"])
        colour = "green" if used < 70 else "yellow" if used < 90 else "red"
        self.line(f"{cli_t('ctx.label.budget')} {gauge}", colour)
        self.note(window + " · " + t("repl.context_overhead", overhead=view["budget"]["overhead"]))
        self.console.rule(style="dim")

    def history(
        self,
        info: SessionInfo,
        messages: Sequence[Message],
        *,
        pinned: Collection[int] = (),
        summaries: Sequence[Summary] = (),
        images: Sequence[ImageRecord] = (),
        versions: dict[int, Versions] | None = None,
    ) -> None:
        self.line(t("repl.history_title", session=info.name, count=len(messages)), "bold")
        if info.persona:
            self.line(t("repl.history_persona", persona=info.persona), ROLE_STYLES[Role.SYSTEM])
        span = (
            covered([m.seq or 0 for m in messages], summaries[-1].first_seq, summaries[-1].last_seq)
            if summaries
            else None
        )
        if span is not None:  # the running summary the next call uses; earlier versions are kept too
            self.note(t("repl.history_summary", first=span[0], last=span[1], text=summaries[-1].content))
            if len(summaries) > 1:
                self.note(t("repl.history_older_summaries", count=len(summaries) - 1))
        pending = sorted(images, key=lambda im: im.after_seq)
        if not messages:
            self.note(t("repl.history_empty"))
        for i, m in enumerate(messages, 1):
            while pending and pending[0].after_seq < (m.seq or 0):
                self._image(pending.pop(0))
            text = Text(f"{m.role.value}: ", style=f"bold {ROLE_STYLES.get(m.role, '')}")
            text.append(m.content, style=ROLE_STYLES.get(m.role, ""))
            for call in m.tool_calls or ():
                fn = call.get("function") or {}
                text.append(
                    f" → {fn.get('name')}({' '.join(str(fn.get('arguments') or '').split())})", style="dim cyan"
                )
            if m.status is not Status.COMPLETE:
                text.append(" " + t(f"repl.status.{m.status.value}"), style="bold yellow")
            if m.id in pinned:
                text.append(" " + t("repl.history_pinned"), style="bold magenta")
            mark = (versions or {}).get(m.id or 0)
            if mark is not None:  # the point has versions: /versions lists them
                text.append(" " + t("repl.history_versions", number=mark.number, count=mark.count), style="bold cyan")
            self._numbered(i, text)
            for a in m.attachments:
                self.note(t("repl.history_file", name=a.name, type=a.media_type, size=human_size(a.size)))
        for image in pending:
            self._image(image)

    def versions(self, number: int, versions: Sequence[Version]) -> None:
        """``/versions``: the versions of message ``number``'s point, each its first turn in
        short (``*`` the one shown)."""
        self.line(t("repl.versions_title", number=number, count=len(versions)), "bold")
        for v in versions:
            head = Text(f"{'*' if v.shown else ' '} {v.number:>2} ", style="bold" if v.shown else "dim")
            for k, m in enumerate(v.messages):
                if k:
                    head.append("\n     ")
                head.append(f"{m.role.value}: ", style=f"bold {ROLE_STYLES.get(m.role, '')}")
                head.append(
                    _short(
                        m.content or " ".join(str((c.get("function") or {}).get("name")) for c in m.tool_calls or ())
                    )
                )
                if m.status is not Status.COMPLETE:
                    head.append(" " + t(f"repl.status.{m.status.value}"), style="bold yellow")
            if v.more:
                head.append("  " + t("repl.versions_more", count=v.more), style="dim")
            self.console.print(head, soft_wrap=True)

    def _numbered(self, number: int, text: Text) -> None:
        """``text`` after its number, wrapped at words to the terminal's width, its lines
        indented under the first (a long message never breaks inside a word)."""
        grid = Table.grid(padding=(0, 1))
        grid.add_column(justify="right", style="dim", no_wrap=True, min_width=3)
        grid.add_column(overflow="fold")
        grid.add_row(str(number), text)
        self.console.print(grid)

    def _image(self, image: ImageRecord) -> None:
        self.console.print(
            Text(t("repl.history_image", prompt=image.prompt, path=image.path), style="dim magenta"), soft_wrap=True
        )

    def memory(self, current: str, choices: Iterable[str], *, own: str | None, window: int, limit: int) -> None:
        """The strategy in use, where it comes from, the budget, and every strategy."""
        self.line(t("repl.memory_show", strategy=current, window=f"{window:,}", limit=f"{limit:,}"))
        if own is not None:
            self.note(t("repl.memory_override", own=own))
        for name in choices:
            mark = "*" if name == current else " "
            self.line(f" {mark} {name:<8} {t(f'repl.memory.{name}')}", "bold" if name == current else None)
        self.note(t("repl.memory_hint"))

    def sessions(self, sessions: Iterable[SessionInfo], current: SessionInfo) -> None:
        """The sessions, the current one marked (a new chat not stored yet first): the name
        (what /switch takes) and the title."""
        rows = list(sessions)
        if current.draft:
            rows.insert(0, current)
        if not rows:
            self.note(t("repl.sessions_empty"))
            return
        table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
        table.add_column("")
        table.add_column(t("repl.col_name"), no_wrap=True)
        table.add_column(t("repl.col_title"), no_wrap=True, overflow="ellipsis", ratio=1)
        table.add_column(t("repl.col_messages"), justify="right", no_wrap=True)
        table.add_column(t("repl.col_model"), no_wrap=True, overflow="ellipsis")
        table.add_column(t("repl.col_updated"), no_wrap=True)
        for s in rows:
            updated = s.updated.astimezone().strftime("%Y-%m-%d %H:%M") if s.updated else ""
            mark = "*" if s.id == current.id else ""
            name = s.name or t("repl.new_chat") if s.draft else s.name
            row = (mark, name, s.title or "", str(s.message_count), s.model or "", updated)
            table.add_row(*row, style="bold" if mark else None)
        self.console.print(table)

    def search(self, found: Found) -> None:
        """Sessions found by the words of their messages: each with its name (what /switch
        takes), title and snippets, the words found in bold."""
        if not found.sessions:
            self.note(t("repl.search_none", query=found.query))
            return
        for match in found.sessions:
            s = match.session
            head = Text(s.label, style="bold")
            if s.label != s.name:
                head.append(f"  ({s.name})", style="dim")
            head.append("  " + t("repl.search_count", count=s.message_count), style="dim")
            self.console.print(head)
            for snip in match.snippets:
                text = Text(f"{t('repl.role.' + snip.role.value)}: ", style=ROLE_STYLES.get(snip.role, ""))
                body = Text(snip.text)
                for start, end in snip.marks:
                    body.stylize("bold yellow", start, end)
                text.append_text(body)
                grid = Table.grid(padding=(0, 0))
                grid.add_column(width=2, no_wrap=True)
                grid.add_column(overflow="fold")
                grid.add_row("", text)
                self.console.print(grid)
        if found.total > len(found.sessions):
            self.note(t("repl.search_more", shown=len(found.sessions), total=found.total))
        self.note(t("repl.search_hint"))

    def memories(self, memories: Sequence[Memory]) -> None:
        """Memories as a table: id (what /forget takes), kind, an event's date, text, when learned."""
        table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
        table.add_column("#", justify="right", style="bold")
        table.add_column(t("repl.col_mem_kind"), style="dim")
        table.add_column(t("repl.col_mem_date"))
        table.add_column(t("repl.col_mem_text"), overflow="fold")
        table.add_column(t("repl.col_mem_learned"), style="dim")
        for m in memories:
            learned = m.created.astimezone().strftime("%Y-%m-%d") if m.created else ""
            date = m.event_date.isoformat() if m.event_date else ""
            table.add_row(str(m.id), m.kind.value, date, m.content, learned)
        self.console.print(table)

    def help(self, rows: Iterable[tuple[str, str]]) -> None:
        self.line(t("repl.help_title"), "bold")
        table = Table(box=None, show_header=False, pad_edge=False)
        table.add_column(style="cyan", no_wrap=True)
        table.add_column()
        for usage, text in rows:
            table.add_row(Text(usage), Text(text))  # not markup: "[on|off]" is text
        self.console.print(table)
        self.note(t("repl.help_footer"))


def _short(text: str, width: int = 100) -> str:
    """One line of at most ``width`` characters."""
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"
