"""JSON shapes memchat writes and reads, and session export/import, by job:

- ``wire``: every JSON shape that leaves the process, as a ``TypedDict`` — the export format
  (format ``memchat/1``) and the ``--json`` output of ``memchat sessions list``/``show``/
  ``context`` and ``memchat config`` — and the conversions to them;
- ``export``: a session as JSONL (re-importable) or as a Markdown transcript;
- ``imports``: a JSONL export parsed and validated whole, then imported all or nothing;
- ``context``: the context of a call (a ``ContextPlan``) as ``ContextView``.

The public names of all four are re-exported here.
"""

from __future__ import annotations

from memchat.serialization.context import context_view
from memchat.serialization.export import export_jsonl, export_markdown
from memchat.serialization.imports import Parsed, import_jsonl, parse_jsonl, prepare_import
from memchat.serialization.wire import (
    FORMAT,
    BudgetView,
    ConfigEntry,
    ContextEntryView,
    ContextSectionView,
    ContextView,
    ImageLine,
    MessageRecord,
    MessageView,
    OmittedView,
    RecallItemView,
    RecallMatchView,
    SearchHitView,
    SessionRecord,
    SessionSummary,
    SessionView,
    SnippetView,
    SummaryRecord,
    UsageRecord,
    VersionRecord,
    covered,
    format_time,
    image_line,
    message_record,
    search_view,
    session_record,
    session_summary,
    session_view,
    snippet_view,
    summary_record,
    version_record,
)

__all__ = [
    "FORMAT",
    "BudgetView",
    "ConfigEntry",
    "ContextEntryView",
    "ContextSectionView",
    "ContextView",
    "ImageLine",
    "MessageRecord",
    "MessageView",
    "OmittedView",
    "Parsed",
    "RecallItemView",
    "RecallMatchView",
    "SearchHitView",
    "SessionRecord",
    "SessionSummary",
    "SessionView",
    "SnippetView",
    "SummaryRecord",
    "UsageRecord",
    "VersionRecord",
    "context_view",
    "covered",
    "export_jsonl",
    "export_markdown",
    "format_time",
    "image_line",
    "import_jsonl",
    "message_record",
    "parse_jsonl",
    "prepare_import",
    "search_view",
    "session_record",
    "session_summary",
    "session_view",
    "snippet_view",
    "summary_record",
    "version_record",
]
