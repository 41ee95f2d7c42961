"""axe-core in the browser: the serious and critical violations of a page or an open dialog.

axe-core comes inside the ``axe-playwright-python`` wheel (pinned in requirements-test.lock) and
is injected by Playwright into the page under test: nothing is fetched at run time. It is
injected through the DevTools protocol, so the pages' Content-Security-Policy does not apply.
"""
from axe_playwright_python.base import AXE_SCRIPT

# What fails a test: axe's "serious" and "critical" impacts. "moderate" and "minor" are reported
# in the counts but do not fail (issue 14: "fails on any serious or critical violation").
BLOCKING = ("serious", "critical")
RUN = """context => axe.run(context || document, {resultTypes: ["violations"]})
    .then(results => results.violations.map(v => ({
        id: v.id, impact: v.impact, help: v.help,
        nodes: v.nodes.map(n => ({target: n.target.join(" "), summary: n.failureSummary}))})))"""


def preload(context) -> None:
    """Have every page of this browser context load axe-core as it opens (the script crosses
    from Python to the browser once, not once a page: about a quarter of an axe walk's time)."""
    context.add_init_script(AXE_SCRIPT)


def violations(page, context: str | None = None) -> list[dict]:
    """Every axe violation on the page (or inside the element ``context`` selects)."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(AXE_SCRIPT)
    return page.evaluate(RUN, context)


def blocking(found: list[dict]) -> list[dict]:
    """The violations that fail a test."""
    return [v for v in found if v["impact"] in BLOCKING]


def report(found: list[dict]) -> str:
    """One line per violation and node, for an assertion message."""
    lines = []
    for v in found:
        lines.append(f"  {v['id']} ({v['impact']}): {v['help']}")
        lines.extend(f"    {n['target']}: {(n['summary'] or '').splitlines()[-1].strip()}"
                     for n in v["nodes"][:6])
    return "\n".join(lines)


def assert_accessible(page, where: str, context: str | None = None) -> None:
    """Fail on any serious or critical axe violation (of a dialog: pass its selector)."""
    found = blocking(violations(page, context))
    assert not found, f"axe finds serious or critical violations in {where}:\n{report(found)}"
