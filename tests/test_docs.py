"""The user documentation: links that resolve, a model card beside every shipped weights file."""
import re
from pathlib import Path

import pytest

from posevid.model.checkpoint import SHIPPED_WEIGHTS

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", ROOT / "weights" / "README.md", *sorted((ROOT / "docs").glob("*.md")),
        *sorted((ROOT / "posevid" / "weights").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)|<img src=\"([^\"]+)\"")


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(doc):
    for m in LINK.finditer(doc.read_text()):
        target = (m.group(1) or m.group(2)).split("#")[0]
        if not target or re.match(r"[a-z]+:", target):  # an anchor in the same file, or a URL
            continue
        assert (doc.parent / target).exists(), f"{doc.relative_to(ROOT)} links to missing {target}"


def test_every_shipped_weights_file_has_its_model_card():
    for filename in SHIPPED_WEIGHTS.values():
        card = ROOT / "posevid" / "weights" / Path(filename).with_suffix(".md")
        assert card.is_file(), f"no model card {card.relative_to(ROOT)} for {filename}"
        assert filename in (ROOT / "weights" / "README.md").read_text()
