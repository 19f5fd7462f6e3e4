"""Pure in-memory indexes of the watched objects, selector matching, lookups and
reference resolution. The handlers call `MeshIndex.apply/delete`,
`missing_references` and `dependents`; the catalog reads through `lookups`."""

from weft_operator.index import lookups
from weft_operator.index.references import Reference, references_of
from weft_operator.index.resolution import MissingReference, dependents, missing_references
from weft_operator.index.selectors import selector_matches
from weft_operator.index.store import MeshIndex

__all__ = [
    "MeshIndex",
    "MissingReference",
    "Reference",
    "dependents",
    "lookups",
    "missing_references",
    "references_of",
    "selector_matches",
]
