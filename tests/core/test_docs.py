"""The docs say what the code does: tables of fields and counts that drift otherwise."""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

from pydantic import BaseModel

from wmkit.core.protocols import ROLES
from wmkit.core.recipe import Recipe

DOCS = Path(__file__).parents[2] / "docs"


def test_recipes_top_level_table_lists_every_top_level_field():
    page = (DOCS / "recipes.md").read_text()
    table = page.split("## Top-level fields", 1)[1].split("\n\n", 2)[1]
    documented = set(re.findall(r"^\| `(\w+)` \|", table, flags=re.M))
    blocks = {  # each of these has a section of its own, as has each role's block
        name
        for name, field in Recipe.model_fields.items()
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)
    } | set(ROLES)
    assert documented == set(Recipe.model_fields) - blocks


def test_plugins_page_counts_the_plugins_that_ship():
    shipped = {ep.name for ep in metadata.entry_points(group="wmkit") if ep.dist.name == "wmkit"}
    words = {10: "ten", 11: "eleven", 12: "twelve", 13: "thirteen", 14: "fourteen", 15: "fifteen"}
    page = (DOCS / "plugins.md").read_text()
    assert f"The {words.get(len(shipped), len(shipped))} plugins that ship" in page
    assert "the four reference plugins" not in page
