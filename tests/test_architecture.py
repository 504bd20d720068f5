"""The public contract and the direction of dependencies."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path

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
    "memchat.tools.source",
    "memchat.mcp_config",
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
    "memchat.providers.windows",
    "memchat.stores.sqlite",
    "memchat.images.modelscope_async",
    "memchat.images.openai_images",
    "memchat.images.download",
    "memchat.mcp",
    "mcp",
    "httpx2",
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


# -- every import, those inside functions too ------------------------------------------------------

SRC = Path(memchat.__file__).parent
#: the wiring module and the interfaces may import adapters; nothing else may
EDGE = ("memchat.factory", "memchat.cli", "memchat.server", "memchat.testing")
ADAPTERS = (
    "memchat.providers._httpx",
    "memchat.providers.http_errors",
    "memchat.providers.openai_compat",
    "memchat.providers.local_llama",
    "memchat.providers.llama_cache",
    "memchat.providers.windows",
    "memchat.stores.sqlite",
    "memchat.stores.sqlite_dialect",
    "memchat.stores.postgres",
    "memchat.stores.pg_dialect",
    "memchat.images.modelscope_async",
    "memchat.images.openai_images",
    "memchat.images.download",
    "memchat.images.http",
    "memchat.mcp",
)
THIRD_PARTY_EDGE = (
    "rich",
    "prompt_toolkit",
    "fastapi",
    "starlette",
    "uvicorn",
    "httpx",
    "httpx2",
    "openai",
    "llama_cpp",
    "mcp",
)


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, modules: set[str]) -> list[tuple[str, bool]]:
    """(imported module, at run time) for every import statement of ``path``, however deep
    (inside functions too); ``if TYPE_CHECKING:`` blocks do not count as run time."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    me = _module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    typing_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            typing_only.update(id(n) for n in ast.walk(node))
    found: list[tuple[str, bool]] = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module != "__future__":
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*up, base] if base else up)
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        for name in names:
            found.append((name, id(node) not in typing_only))
    return found


def _graph() -> tuple[dict[str, set[str]], dict[str, list[str]]]:
    paths = {_module_name(p): p for p in SRC.rglob("*.py")}
    modules = set(paths)
    graph: dict[str, set[str]] = {m: set() for m in modules}
    external: dict[str, list[str]] = {m: [] for m in modules}
    for mod, path in paths.items():
        for name, runtime in _imports(path, modules):
            if not runtime:
                continue
            target = name
            while target not in modules and "." in target:
                target = target.rpartition(".")[0]
            if target in modules:
                if target != mod:
                    graph[mod].add(target)
            else:
                external[mod].append(name)
    return graph, external


def _is(module: str, prefixes: Sequence[str]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def test_no_import_cycle_even_through_imports_inside_functions() -> None:
    graph, _ = _graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert cycles == []


def test_the_core_reaches_no_interface_or_adapter_even_inside_functions() -> None:
    graph, external = _graph()
    core = [m for m in graph if not _is(m, (*EDGE, *ADAPTERS))]
    assert {"memchat.agent", "memchat.memory.builder", "memchat.memories.service"} <= set(core)
    wrong = {m: sorted(t for t in graph[m] if _is(t, (*EDGE, *ADAPTERS))) for m in core}
    assert {m: t for m, t in wrong.items() if t} == {}
    third = {m: sorted(n for n in external[m] if _is(n, THIRD_PARTY_EDGE)) for m in core}
    assert {m: n for m, n in third.items() if n} == {}


def test_the_error_tree_in_the_docstring_matches_the_classes() -> None:
    import memchat.errors as errors

    drawn: dict[str, str] = {}
    parents: list[str] = []
    for line in (errors.__doc__ or "").splitlines():
        found = re.match(r"^ {4}((?:[│ ] {3})*)(?:[├└]── )?(\w+)", line)
        if not found or not found.group(2)[0].isupper():
            continue
        depth = len(found.group(1)) // 4 + (1 if "──" in line else 0)
        parents[depth:] = [found.group(2)]
        if depth:
            drawn[found.group(2)] = parents[depth - 1]
    classes = {
        name: cls.__mro__[1].__name__
        for name, cls in vars(errors).items()
        if isinstance(cls, type) and issubclass(cls, errors.MemchatError) and cls is not errors.MemchatError
    }
    assert drawn == classes
