"""Conformance: every number in every catalog file carries a source."""

import json
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
FILES = sorted(p for d in ("arch", "memory", "formats") for p in (ROOT / d).rglob("*.y*ml"))
UNSOURCED_KEYS = {"sources", "source", "name", "kind", "description"}


def numeric_leaves(node, path=""):
    if isinstance(node, dict):
        for key, value in node.items():
            if key not in UNSOURCED_KEYS:
                yield from numeric_leaves(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from numeric_leaves(value, f"{path}[{i}]")
    elif isinstance(node, (int, float)) and not isinstance(node, bool):
        yield path


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_number_has_a_source(path):
    data = yaml.safe_load(path.read_text())
    if isinstance(data.get("source"), str) and data["source"].strip():
        return  # one source covers the whole entry
    sources = data.get("sources") or {}
    assert sources, f"{path.name}: no source/sources"
    for leaf in numeric_leaves(data):
        covered = any(leaf == p or leaf.startswith(p + ".") or leaf.startswith(p + "[") for p in sources)
        assert covered, f"{path.name}: {leaf} has no source (add a 'sources' entry for it or a prefix)"
    for key, text in sources.items():
        assert isinstance(text, str) and len(text) > 10, f"{path.name}: sources.{key} is not a citation"


@pytest.mark.parametrize("path", sorted((ROOT / "models").glob("*.json")), ids=lambda p: p.name)
def test_bundled_models_cite_their_config(path):
    assert json.loads(path.read_text())["hwdse_source"].strip()
