#!/usr/bin/env python3
"""Fails when a crate writes a table it does not own.

docs/architecture.md's "Data" table names one owning crate per table. This check finds every
`INSERT INTO`, `UPDATE` and `DELETE FROM` of a schema-qualified table in the non-test sources
of services/*/src and shared/*/src and fails when
- the table is not in the ownership table (document its owner first), or
- the writing crate is not its owner, unless the table's row names the writer in its notes (a
  documented exception, e.g. the mirror column `shared/tools` keeps in `agent.agents`).
Test code (tests/ folders, shared/testkit) sets up fixtures directly and is not checked.
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
WRITE = re.compile(r"\b(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+([a-z_]+\.[a-z_]+)\b", re.I)
CRATE_DIRS = [p for p in sorted((ROOT / "services").iterdir()) + sorted((ROOT / "shared").iterdir())
              if (p / "src").is_dir() and p.name != "testkit"]


def ownership():
    """[(pattern, owner, notes)] from the table whose header is `| tables | owner | notes |`."""
    rows, inside = [], False
    for line in (ROOT / "docs" / "architecture.md").read_text().splitlines():
        if line.startswith("| tables | owner |"):
            inside = True
            continue
        if inside and not line.startswith("|"):
            break
        if inside and not line.startswith("|---"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            owner = re.findall(r"`([^`]+)`", cells[1])[0]
            for table in re.findall(r"`([^`]+)`", cells[0]):
                rows.append((table, owner, cells[2] if len(cells) > 2 else ""))
    return rows


def owner_row(rows, table):
    for pattern, owner, notes in rows:
        if pattern.endswith(("…", "*")):
            if table.startswith(pattern.rstrip("…*")):
                return owner, notes
        elif pattern == table:
            return owner, notes
    return None


def non_test_source(path):
    """The file's text without `#[cfg(test)]` modules (they sit at the end by convention)."""
    text = path.read_text()
    cut = text.find("#[cfg(test)]")
    return text if cut < 0 else text[:cut]


def main():
    rows = ownership()
    if not rows:
        print("check-owners: no ownership table found in docs/architecture.md")
        return 1
    problems = []
    for crate in CRATE_DIRS:
        writer = f"{crate.parent.name}/{crate.name}"
        for path in sorted((crate / "src").rglob("*.rs")):
            for match in WRITE.finditer(non_test_source(path)):
                table = match.group(1).lower()
                found = owner_row(rows, table)
                where = path.relative_to(ROOT)
                if found is None:
                    problems.append(f"{where}: writes {table}, which has no owner in docs/architecture.md")
                elif found[0] != writer and f"`{writer}`" not in found[1]:
                    problems.append(f"{where}: writes {table}, owned by {found[0]}")
    for p in sorted(set(problems)):
        print(p)
    if problems:
        print(f"check-owners: {len(set(problems))} write(s) outside the owning crate")
        return 1
    print(f"check-owners: every table write is in its owning crate ({len(rows)} tables listed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
