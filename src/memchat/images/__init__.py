"""Text-to-image: the ``ImageGenerator`` port, its adapters (ModelScope's asynchronous task API,
OpenAI's images API) and the safe download both share."""

from memchat.images.base import GeneratedImage, ImageGenerator, ImageRequest

__all__ = ["GeneratedImage", "ImageGenerator", "ImageRequest"]
