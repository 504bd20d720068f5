"""Column lists shared by the SQLite store's modules."""

MESSAGE_COLUMNS = (
    "id, seq, role, content, status, tokens, token_method, usage, model, created, tool_calls, tool_call_id"
)
