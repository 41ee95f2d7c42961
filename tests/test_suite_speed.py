"""What the suite keeps for the whole run to build each test's app faster (tests/conftest.py)
is what each app would have compiled for itself."""
import jinja2

from tests import conftest


def test_a_kept_url_builder_is_the_code_werkzeug_compiles_for_the_rule(app):
    rules = list(app.url_map.iter_rules())
    assert len(rules) > 50
    for rule in rules:
        for append_unknown in (False, True):
            own = conftest._compile_builder(rule, append_unknown).__code__
            kept = conftest._cached_compile_builder(rule, append_unknown).__code__
            assert (kept.co_code, kept.co_consts, kept.co_varnames, kept.co_names) == \
                (own.co_code, own.co_consts, own.co_varnames, own.co_names), rule.rule
    with app.test_request_context():
        assert app.url_for("users.detail", membership_id=7) == "/admin/participants/users/7"


def test_kept_template_code_follows_the_templates_source():
    def render(source: str) -> str:
        env = jinja2.Environment(loader=jinja2.DictLoader({"page.html": source}),
                                 bytecode_cache=conftest.TEMPLATE_BYTECODE)
        return env.get_template("page.html").render(name="Ana")

    assert render("Hello {{ name }}") == "Hello Ana"
    assert render("Hello {{ name }}") == "Hello Ana"  # from the kept code
    assert render("Goodbye {{ name }}") == "Goodbye Ana"  # a changed template is compiled anew


def test_the_timing_sensitive_tests_are_one_xdist_group(request):
    """`make test TEST_WORKERS=2` runs two xdist workers: the tests that race processes against
    the clock run on one of them (--dist loadgroup), never two at once; a renamed file would
    drop out."""
    grouped = {item.nodeid.split("::", 1)[0] for item in request.session.items
               if any(m.args == ("timing-sensitive",) for m in item.iter_markers("xdist_group"))}
    for path in conftest.TIMING_SENSITIVE:
        assert (conftest.ROOT / path).is_file(), path
    collected = {item.nodeid.split("::", 1)[0] for item in request.session.items}
    assert grouped == set(conftest.TIMING_SENSITIVE) & collected
