"""``memchat serve``: the HTTP API (JSON + Server-Sent Events) and the web page, on FastAPI.

Install with ``pip install "memchat[server]"``. The core never imports this package."""
