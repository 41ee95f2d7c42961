"""Issue 12 leftovers in templates: templates decide nothing (no role compared as a string) and
an area's templates and views use their own templates and the shared ones, never another
area's (what two areas show lives in a shared partial at the top of templates/)."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = ROOT / "templates"
AREAS = {p.name for p in TEMPLATES.iterdir() if p.is_dir() and p.name not in ("email", "errors")}
# A template that names another template: {% include/import/from/extends "area/…" %}.
REFERENCE = re.compile(r"{%-?\s*(?:include|import|from|extends)\s+[\"']([a-z_]+)/[^\"']+[\"']")
# A view that renders or answers with a template of an area.
RENDERED = re.compile(r"[\"']([a-z_]+)/[a-z_]+\.html[\"']")
# Pages whose whole-page fallback shows another area's list under a side panel (the Users list
# under Add to Group): the one use the architecture names (portal/selection.py).
SHARED_LIST = {("groups", "users")}


def test_no_template_compares_a_role_as_a_string():
    found = [f"{path.relative_to(ROOT)}: {line.strip()}"
             for path in TEMPLATES.rglob("*.html")
             for line in path.read_text().splitlines()
             if re.search(r"\.role\s*[!=]=", line)]
    assert found == []


def test_an_areas_templates_and_views_use_no_other_areas_templates():
    crossing = []
    for area in sorted(AREAS):
        for path in sorted((TEMPLATES / area).glob("*.html")):
            for other in REFERENCE.findall(path.read_text()):
                if other in AREAS and other != area and (area, other) not in SHARED_LIST:
                    crossing.append(f"{path.relative_to(ROOT)} uses {other}/")
        package = ROOT / "portal" / area
        for path in sorted(package.glob("*.py")) if package.is_dir() else ():
            for other in RENDERED.findall(path.read_text()):
                if other in AREAS and other != area:
                    crossing.append(f"{path.relative_to(ROOT)} renders {other}/")
    assert crossing == []
