#!/usr/bin/env python3
"""Fails when Rust code builds SQL text out of values.

Every query is a static string with bind parameters ($1, $2…). This check looks for SQL
keywords inside format!/write!/format_args! strings that interpolate something, and for
SQL strings glued together with `+` or push_str of a non-literal. The few statements that
must carry an identifier (CREATE DATABASE "x", LISTEN "x") are allowed when one of the three lines
before says `// sql-identifier: <why it is safe>`.

It also fails on `Row::get` in non-test code under services/*/src and shared/*/src: `get`
panics on a NULL or a type the code did not expect, so request and job paths decode with
`row.try_get(..)?` (a logged 500 or a failed job attempt instead of a dead worker). The check is
a heuristic on row-like receivers (`row.get(`, `r.get("col")`, `rows[0].get(`, `.await?.get(0)`,
and any `get::<_, T>(`, which only `Row::get` takes); a line that must keep such a call says
`// row-get: <why it cannot panic>`. shared/testkit and `#[cfg(test)]` items are not checked.
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
KEYWORDS = re.compile(
    r"\b(SELECT|INSERT\s+INTO|UPDATE|DELETE\s+FROM|WHERE|ORDER\s+BY|VALUES|CREATE|DROP|ALTER|LISTEN|NOTIFY|SET\s+\w+\s*=)\b"
)
FORMAT_CALL = re.compile(r"\b(format|write|writeln|format_args|concat)!\s*\(")
PUSH = re.compile(r"\.push_str\(\s*(?!\")")
PLUS_SQL = re.compile(r"\"[^\"]*\b(SELECT|WHERE|FROM|VALUES)\b[^\"]*\"\s*\+\s*[a-z_&]")


def string_literal_after(text: str, start: int) -> str:
    """The first string literal (plain or raw) at or after `start`."""
    m = re.compile(r'r#*"|"').search(text, start)
    if not m or m.start() - start > 200:
        return ""
    opener = m.group(0)
    if opener.startswith("r"):
        closer = '"' + "#" * (len(opener) - 2)
        end = text.find(closer, m.end())
        return text[m.end():end] if end >= 0 else ""
    i = m.end()
    out = []
    while i < len(text):
        c = text[i]
        if c == "\\":
            out.append(text[i:i + 2])
            i += 2
            continue
        if c == '"':
            break
        out.append(c)
        i += 1
    return "".join(out)


# Receivers that hold a tokio_postgres Row in this codebase, by naming convention.
ROW_NAMES = r"(?:row|rows\[\w+\]|r|rec|first|cur|range|one|res|s|x|last|existing|current|found)"
ROW_GET = [
    # `get::<_, T>(..)`: two type parameters is Row::get's signature (maps and JSON take one).
    re.compile(r"\.get::<\s*_\s*,"),
    # `row.get("col")`, `r.get(0)`, `rows[0].get(1)`.
    re.compile(r"\b" + ROW_NAMES + r"\s*\.get(?:::<[^>]*>)?\(\s*(?:\"|\d)"),
    # A row straight from a query: `.await?.get(0)`, `.ok_or(..)?.get("col")`.
    re.compile(r"\?\s*\.get(?:::<[^>]*>)?\(\s*(?:\"|\d)"),
]
DB_READS = re.compile(r"\b(Row|query|query_one|query_opt|query_raw)\b")


def strip_test_items(text: str) -> str:
    """`text` with every `#[cfg(test)]` item blanked (lines kept, so numbers stay right)."""
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        if lines[i].strip() != "#[cfg(test)]":
            i += 1
            continue
        # Blank from the attribute to the end of the item: its `;` or its closing brace.
        j, depth, opened = i, 0, False
        while j < len(lines):
            code = re.sub(r'"(?:\\.|[^"\\])*"', '""', lines[j].split("//")[0])
            depth += code.count("{") - code.count("}")
            opened = opened or "{" in code
            if (opened and depth <= 0) or (not opened and j > i and code.rstrip().endswith(";")):
                break
            j += 1
        for k in range(i, min(j + 1, len(lines))):
            lines[k] = ""
        i = j + 1
    return "\n".join(lines)


def row_get_problems() -> list[str]:
    problems = []
    for crate_src in sorted(ROOT.glob("*/*/src")):
        rel_src = crate_src.relative_to(ROOT)
        if rel_src.parts[0] not in ("services", "shared") or rel_src.parts[1] == "testkit":
            continue
        for path in sorted(crate_src.rglob("*.rs")):
            rel = path.relative_to(ROOT).as_posix()
            text = strip_test_items(path.read_text())
            # Only code that reads rows holds one (this keeps `value.get("key")` on JSON apart).
            if not DB_READS.search(text):
                continue
            lines = text.split("\n")
            seen = set()
            for pattern in ROW_GET:
                for m in pattern.finditer(text):
                    line_no = text.count("\n", 0, m.end() - 1)
                    line = lines[line_no]
                    if line_no in seen or "row-get:" in line or line.lstrip().startswith("//"):
                        continue
                    seen.add(line_no)
                    problems.append(f"{rel}:{line_no + 1}: Row::get panics on a bad row: "
                                    f"{line.strip()}")
    return problems


def main() -> int:
    problems = []
    for path in sorted(ROOT.glob("**/*.rs")):
        rel = path.relative_to(ROOT)
        if rel.parts[0] in ("target", ".data") or "scripts" in rel.parts:
            continue
        text = path.read_text()
        lines = text.splitlines()
        for m in FORMAT_CALL.finditer(text):
            lit = string_literal_after(text, m.end())
            if not lit or not KEYWORDS.search(lit):
                continue
            if not re.search(r"\{[^}]*\}", lit.replace("{{", "").replace("}}", "")):
                continue
            line_no = text.count("\n", 0, m.start())
            here = lines[line_no].strip()
            # The marker may sit up to three lines above, where the statement starts.
            if any("sql-identifier:" in l for l in lines[max(0, line_no - 3):line_no + 1]):
                continue
            problems.append(f"{rel}:{line_no + 1}: SQL text built with {m.group(1)}!: {here}")
        for i, line in enumerate(lines):
            if PLUS_SQL.search(line):
                problems.append(f"{rel}:{i + 1}: SQL text glued with +: {line.strip()}")
            if PUSH.search(line) and KEYWORDS.search(line):
                problems.append(f"{rel}:{i + 1}: SQL text pushed from a value: {line.strip()}")
    row_gets = row_get_problems()
    for p in problems + row_gets:
        print(p)
    if problems:
        print(f"\n{len(problems)} place(s) build SQL from values: use bind parameters "
              "or a fixed set of clauses (see ARCHITECTURE.md, Data).", file=sys.stderr)
    if row_gets:
        print(f"\n{len(row_gets)} place(s) decode a row with Row::get, which panics: use "
              "`row.try_get(..)?` (or mark the line `// row-get: <why it cannot panic>`).",
              file=sys.stderr)
    if problems or row_gets:
        return 1
    print("check-sql: no SQL built from values, no Row::get outside tests")
    return 0


if __name__ == "__main__":
    sys.exit(main())
