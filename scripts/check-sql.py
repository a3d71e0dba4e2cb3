#!/usr/bin/env python3
"""Fails when Rust code builds SQL text out of values.

Every query is a static string with bind parameters ($1, $2…). This check looks for SQL
keywords inside format!/write!/format_args! strings that interpolate something, and for
SQL strings glued together with `+` or push_str of a non-literal. The few statements that
must carry an identifier (CREATE DATABASE "x", LISTEN "x") are allowed when one of the three lines
before says `// sql-identifier: <why it is safe>`.
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
    for p in problems:
        print(p)
    if problems:
        print(f"\n{len(problems)} place(s) build SQL from values: use bind parameters "
              "or a fixed set of clauses (see ARCHITECTURE.md, Data).", file=sys.stderr)
        return 1
    print("check-sql: no SQL built from values")
    return 0


if __name__ == "__main__":
    sys.exit(main())
