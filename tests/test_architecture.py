"""The public contract and the direction of dependencies."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import memchat

CORE = [
    "memchat",
    "memchat.agent",
    "memchat.domain",
    "memchat.errors",
    "memchat.memory",
    "memchat.memory.builder",
    "memchat.memory.summarize",
    "memchat.providers.base",
    "memchat.stores.base",
    "memchat.tokens",
    "memchat.i18n",
    "memchat.config",
    "memchat.testing",
    "memchat.clock",
    "memchat.tools",
    "memchat.tools.builtin",
    "memchat.tools.loop",
    "memchat.images",
    "memchat.images.base",
]
FORBIDDEN = [
    "rich",
    "prompt_toolkit",
    "typer",
    "click",
    "fastapi",
    "starlette",
    "httpx",
    "openai",
    "llama_cpp",
    "memchat.cli",
    "memchat.server",
    "memchat.providers.openai_compat",
    "memchat.providers.local_llama",
    "memchat.stores.sqlite",
    "memchat.images.modelscope_async",
    "memchat.images.openai_images",
    "memchat.images.download",
]


def test_all_matches_the_exported_names() -> None:
    public = {name for name in dir(memchat) if not name.startswith("_")} | {"__version__"}
    assert set(memchat.__all__) == public
    assert memchat.__all__ == sorted(memchat.__all__, key=str.lower) or memchat.__all__ == sorted(memchat.__all__)
    for name in memchat.__all__:
        assert getattr(memchat, name) is not None, name


def test_the_core_imports_no_interface_or_concrete_adapter() -> None:
    """Import every core module with the interface and adapter modules blocked."""
    code = textwrap.dedent(
        f"""
        import importlib, sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if any(name == f or name.startswith(f + ".") for f in {FORBIDDEN!r}):
                    raise ImportError("core imported " + name)
        sys.meta_path.insert(0, Block())
        for mod in {CORE!r}:
            importlib.import_module(mod)
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_import_memchat_is_cheap() -> None:
    code = "import sys, memchat; print(sorted(m for m in sys.modules if m.startswith('memchat')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['memchat']"
