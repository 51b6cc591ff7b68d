"""The generic registry: duplicates are errors, unknown names suggest close ones, discovery scans."""

import pytest

from deploykit.errors import BadInputError, UnknownModelError
from deploykit.registry import Registry


def test_duplicate_is_an_error():
    r = Registry("widget")
    r.register("a", 1)
    with pytest.raises(ValueError, match="registered twice"):
        r.register("a", 2)


def test_unknown_name_suggests_close_names():
    r = Registry("widget")
    for n in ("gaitgl", "gaitset", "rga"):
        r.register(n, n)
    with pytest.raises(BadInputError, match=r"unknown widget 'gaitgI'; did you mean gaitgl"):
        r.get("gaitgI")
    with pytest.raises(BadInputError, match=r"known: gaitgl, gaitset, rga"):
        r.get("zzz")


def test_names_filter_and_custom_error():
    r = Registry("model", UnknownModelError, hint="run `deploykit list`")
    r.register("b", {"family": "pose"})
    r.register("a", {"family": "gait"})
    assert r.names() == ["a", "b"] and r.names(lambda e: e["family"] == "pose") == ["b"]
    with pytest.raises(UnknownModelError, match="run `deploykit list`"):
        r.get("nope")


def test_every_patch_module_is_discovered():
    # a module in export/patches/ that defines rewrite() is registered without editing any list
    import pkgutil
    import sys

    from deploykit.export import patches

    pkg = sys.modules["deploykit.export.patches"]
    modules = {i.name for i in pkgutil.iter_modules(pkg.__path__)} - {"registry", "driver"}
    modules = {m for m in modules if not m.startswith("_")}
    registered = {patches.get(n).module.rsplit(".", 1)[1] for n in patches.names()}
    assert registered == modules
