"""Files sent with a message (issue 18): read and type-checked by their bytes, size-limited,
hashed; text files go to the model as fenced, named text, images as ``image_url`` parts (for a
model that takes them); memory, search and older turns see a one-line description."""

from memchat.attachments.content import fenced, file_text, text_with_files, wire_content
from memchat.attachments.load import DEFAULT_LIMIT, from_base64, from_bytes, from_data_uri, from_path
from memchat.attachments.sniff import media_type
from memchat.attachments.tokens import IMAGE_TOKENS, image_tokens
from memchat.attachments.vision import accepts_images, known_vision

__all__ = [
    "DEFAULT_LIMIT",
    "IMAGE_TOKENS",
    "accepts_images",
    "fenced",
    "file_text",
    "from_base64",
    "from_bytes",
    "from_data_uri",
    "from_path",
    "image_tokens",
    "known_vision",
    "media_type",
    "text_with_files",
    "wire_content",
]
