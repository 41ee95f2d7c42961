"""The layer rules of ARCHITECTURE.md, read from the code's own imports (no app is built).

Every module under portal/ is parsed; imports inside functions count as much as those at the
top. A failure names the file, the line and the rule it breaks.
"""
import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PORTAL = ROOT / "portal"
TEMPLATES = ROOT / "templates"
# The core: every rule lives in services, every table in models. All other packages are areas.
LAYERS = {"models", "services"}
# The shared web edge, side by side with the areas: any area may use them, they use no area.
EDGE = {"web", "session", "selection", "forms"}
# Names of flask that mean a request is at hand: a service takes plain values instead.
HTTP_NAMES = {
    "request", "session", "g", "has_request_context", "url_for", "flash", "redirect", "abort",
    "make_response", "Response", "Blueprint", "get_flashed_messages", "stream_with_context",
}
HTTP_PACKAGES = ("werkzeug", "flask_login", "flask_wtf", "wtforms", "jinja2_fragments")


def _modules():
    for path in sorted(PORTAL.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        yield path, ".".join(parts)


def _imports(path: Path, module: str):
    """Yield (line, imported module, names) for every import of the file."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, ()
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            names = tuple(alias.name for alias in node.names)
            if base == "portal":  # "from portal import web" imports the module portal.web
                for name in names:
                    yield node.lineno, f"{base}.{name}", ()
            else:
                yield node.lineno, base, names


def _top(module: str) -> str | None:
    """Return the part of portal a module belongs to: its first package below portal."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "portal" else None


def _areas() -> set[str]:
    return {p.name for p in PORTAL.iterdir() if (p / "__init__.py").exists()} - LAYERS


def _where(path: Path, line: int) -> str:
    return f"{path.relative_to(ROOT)}:{line}"


def test_areas_never_import_other_areas():
    areas = _areas()
    broken = []
    for path, module in _modules():
        own = _top(module)
        for line, target, _names in _imports(path, module):
            other = _top(target)
            if own in areas and other in areas and other != own:
                broken.append(f"{_where(path, line)} imports {target}")
    assert not broken, "an area imports another area (share it through portal/selection.py, " \
                       "portal/forms.py or portal/web.py):\n" + "\n".join(broken)


def test_the_shared_edge_imports_no_area():
    areas = _areas()
    broken = [
        f"{_where(path, line)} imports {target}"
        for path, module in _modules() if _top(module) in EDGE
        for line, target, _names in _imports(path, module) if _top(target) in areas
    ]
    assert not broken, "a shared edge module leans on an area:\n" + "\n".join(broken)


def test_services_and_models_know_no_http_and_no_screen():
    broken = []
    for path, module in _modules():
        if _top(module) not in LAYERS:
            continue
        for line, target, names in _imports(path, module):
            top = _top(target)
            if top is not None and top not in LAYERS | {"extensions", "config"}:
                broken.append(f"{_where(path, line)} imports {target} (the web edge)")
            if target.startswith(HTTP_PACKAGES):
                broken.append(f"{_where(path, line)} imports {target}")
            if target == "flask" and HTTP_NAMES & set(names):
                broken.append(f"{_where(path, line)} imports flask.{sorted(HTTP_NAMES & set(names))}")
    assert not broken, "services take plain values (the client address, the actor) instead:\n" \
                       + "\n".join(broken)


def test_models_import_no_service():
    broken = [
        f"{_where(path, line)} imports {target}"
        for path, module in _modules() if _top(module) == "models"
        for line, target, _names in _imports(path, module) if _top(target) == "services"
    ]
    assert not broken, "\n".join(broken)


def test_only_web_py_speaks_htmx():
    broken = []
    for path, module in _modules():
        if module == "portal.web":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                    and re.search(r"\bHX-[A-Z]", node.value):
                broken.append(f"{_where(path, node.lineno)}: {node.value!r}")
    assert not broken, "read and write htmx headers through portal/web.py:\n" + "\n".join(broken)


SCAFFOLDING = {
    r"\burl_endpoints\b": "a guard that is always true (every area is registered)",
    r"ignore missing": "an include that hides a renamed template",
    r"\(#\d+\)|issue #\d+": "an issue number (say what the thing is instead)",
}


def test_templates_carry_no_scaffolding():
    broken = []
    for path in sorted(TEMPLATES.rglob("*.html")):
        for number, text in enumerate(path.read_text().splitlines(), 1):
            for pattern, why in SCAFFOLDING.items():
                if re.search(pattern, text):
                    broken.append(f"{_where(path, number)}: {why}")
    assert not broken, "\n".join(broken)


def test_no_context_processor_loads_anything_for_templates(app):
    """Only the factory's own context processor runs: a screen's data comes in its read model."""
    ours = {f"{f.__module__}.{f.__name__}"
            for funcs in app.template_context_processors.values() for f in funcs
            if f.__module__.startswith("portal")}
    assert ours == {"portal.inject_actor"}
