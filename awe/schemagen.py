"""Write the JSON Schema files of the contract into ``schemas/jsonschema/`` (``python -m awe.schemagen``)."""

from __future__ import annotations

import json
from pathlib import Path

from schemas.catalog import schema_documents

OUT = Path(__file__).resolve().parent.parent / "schemas" / "jsonschema"


def render() -> dict[str, str]:
    """File name to file content, exactly as committed."""
    return {
        f"{name}.json": json.dumps(doc, indent=2, sort_keys=True) + "\n" for name, doc in schema_documents().items()
    }


def main() -> None:
    """Regenerate the files, removing ones for models that no longer exist."""
    OUT.mkdir(exist_ok=True)
    files = render()
    for stale in OUT.glob("*.json"):
        if stale.name not in files:
            stale.unlink()
    for name, text in files.items():
        (OUT / name).write_text(text)
    print(f"wrote {len(files)} schemas to {OUT}")


if __name__ == "__main__":
    main()
