"""The errors memchat raises. Interfaces turn them into one line (CLI) or a status (HTTP).

::

    MemchatError
    ├── ConfigError                 bad or missing setting (unknown provider, key file mode…)
    ├── StoreError
    │   ├── SessionNotFound
    │   ├── MemoryNotFound          no such memory (of this user)
    │   ├── SessionExists
    │   └── ImportFormatError       a file to import is not a memchat export
    ├── TurnInProgress              another turn of this session is still streaming (server)
    ├── ContextTooLong              the context cannot fit the window with this memory strategy
    ├── UnknownModel                a model the provider does not have (the embedded one has one)
    ├── ProviderError               the model call failed; the turn was rolled back
    │   ├── ProviderUnavailable     cannot connect / DNS / connection refused
    │   ├── ProviderTimeout         no answer in time, or the stream stalled
    │   ├── AuthenticationError     401/403: bad, missing or unbound key
    │   ├── RateLimited             429: ``quota`` (do not retry) or throttled (``retry_after``)
    │   ├── BadRequest              400/404/422: the server refused the request
    │   │   └── ContextLengthExceeded
    │   ├── ServerError             5xx after bounded retries
    │   ├── StreamError             the stream was cut or malformed after it started
    │   │   └── ReplyTooLong        the reply went past the length limit (kept, interrupted)
    │   ├── ImageFailed             the image service ran the task and it failed
    │   ├── ImageTimeout            the image task did not finish in time
    │   └── ImageDownloadError      a generated image could not be fetched safely
    ├── ImageRequestError           an image request refused before it is sent
    ├── AttachmentError             a file that cannot be attached (its bytes are not its type…)
    │   ├── AttachmentTooLarge      over the size limit (``max_attachment``)
    │   └── ImagesNotAccepted       an image for a model that takes text only
    └── ImageCancelled              the user stopped an image task

Every error has ``kind`` (a stable identifier the interfaces translate) and ``detail``
(the server's own words, never containing a key).
"""

from __future__ import annotations


class MemchatError(Exception):
    kind = "error"

    def __init__(self, detail: str = "", **info: object) -> None:
        super().__init__(detail)
        self.detail = detail
        self.info = info

    def __str__(self) -> str:
        return self.detail or self.kind


class ConfigError(MemchatError):
    kind = "config"


class StoreError(MemchatError):
    kind = "store"


class SessionNotFound(StoreError):
    kind = "session_not_found"


class MemoryNotFound(StoreError):
    kind = "memory_not_found"


class SessionExists(StoreError):
    kind = "session_exists"


class ImportFormatError(StoreError):
    kind = "import_format"


class TurnInProgress(MemchatError):
    kind = "turn_in_progress"


class ContextTooLong(MemchatError):
    kind = "context_too_long"


class UnknownModel(MemchatError):
    """``info``: ``model`` (asked for), ``provider`` and ``offered`` (its models, comma-separated)."""

    kind = "unknown_model"


class ProviderError(MemchatError):
    kind = "provider"

    def __init__(self, detail: str = "", *, status: int | None = None, **info: object) -> None:
        super().__init__(detail, **info)
        self.status = status


class ProviderUnavailable(ProviderError):
    kind = "unavailable"


class ProviderTimeout(ProviderError):
    kind = "timeout"


class AuthenticationError(ProviderError):
    kind = "auth"


class RateLimited(ProviderError):
    kind = "rate_limited"

    def __init__(
        self,
        detail: str = "",
        *,
        status: int | None = 429,
        quota: bool = False,
        retry_after: float | None = None,
        **info: object,
    ) -> None:
        super().__init__(detail, status=status, **info)
        self.quota = quota
        self.retry_after = retry_after
        if quota:
            self.kind = "quota"


class BadRequest(ProviderError):
    kind = "bad_request"


class ContextLengthExceeded(BadRequest):
    kind = "context_length"


class ServerError(ProviderError):
    kind = "server"


class StreamError(ProviderError):
    kind = "stream"


class ReplyTooLong(StreamError):
    """The model went on past ``Agent.max_reply_chars``: the turn ends there and what streamed
    is kept, marked ``interrupted`` (``detail``: the limit)."""

    kind = "reply_too_long"
    #: the turn is kept (not dropped, unlike other failed turns)
    kept = True


class ImageRequestError(MemchatError):
    """An image request memchat refuses before sending it (bad size, seed, steps…)."""

    kind = "bad_image_request"


class ImageFailed(ProviderError):
    """The image service ran the task and it failed (FAILED, CANCELED, UNKNOWN)."""

    kind = "image_failed"


class ImageTimeout(ProviderError):
    kind = "image_timeout"


class ImageDownloadError(ProviderError):
    """A generated image's file could not be fetched safely (address, size, type)."""

    kind = "image_download"


class ImageCancelled(MemchatError):
    kind = "cancelled"


class AttachmentError(MemchatError):
    """A file that cannot be sent with a message: unreadable, its bytes not the type its name
    or the caller says, a type memchat does not take, text that does not fit the budget.
    Raised before anything is stored or sent."""

    kind = "attachment"


class AttachmentTooLarge(AttachmentError):
    """A file over the size limit (``max_attachment``, 20 MB unless configured)."""

    kind = "attachment_too_large"


class ImagesNotAccepted(AttachmentError):
    """An image for a model that takes text only (the embedded model; a model not known or
    marked to take images: ``vision = true``)."""

    kind = "images_not_accepted"
