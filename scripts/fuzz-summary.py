#!/usr/bin/env python3
"""Summarises one Schemathesis run from its NDJSON report (scripts/fuzz-api.sh).

Prints operations, examples (test cases sent), failures (cases where a check failed, with the
operation, check and answer), and errors (Schemathesis could not test an operation); exits 1
when there was a failure or an error, or when nothing was tested.
"""
import json
import sys

name, path = sys.argv[1], sys.argv[2]
totals = sys.argv[3] if len(sys.argv) > 3 else None  # file that accumulates "passed failed" per run
operations = set()
examples = 0
failures = []
failed_cases = set()
errors = []
with open(path) as f:
    for line in f:
        event = json.loads(line)
        if "ScenarioFinished" in event:
            scenario = event["ScenarioFinished"]
            recorder = scenario.get("recorder") or {}
            label = recorder.get("label", "?")
            checks = recorder.get("checks") or {}
            interactions = recorder.get("interactions") or {}
            if checks:
                operations.add(label)
            for case_id, results in checks.items():
                examples += 1
                for check in results:
                    if check.get("status") == "failure":
                        failed_cases.add((scenario.get("id"), case_id))
                        response = (interactions.get(case_id) or {}).get("response") or {}
                        failures.append(
                            (label, check.get("name"), response.get("status_code"), scenario.get("phase"))
                        )
        elif "NonFatalError" in event:
            error = event["NonFatalError"]
            value = error.get("value") or {}
            errors.append((error.get("label", "?"), value.get("type"), value.get("message", "")[:200]))
        elif "FatalError" in event:
            errors.append(("run", "fatal", json.dumps(event["FatalError"])[:300]))

distinct = sorted(set(failures))
print(f"== fuzz summary [{name}]: {len(operations)} operations, {examples} examples, "
      f"{len(failures)} failed checks ({len(distinct)} distinct), {len(errors)} errors")
for label, check, status, phase in distinct:
    print(f"   FAIL {label}: {check} (status {status}, {phase} phase)")
for label, kind, message in errors:
    print(f"   ERROR {label}: {kind}: {message}")
if totals:
    with open(totals, "a") as f:
        f.write(f"{examples - len(failed_cases)} {len(failed_cases) + len(errors)}\n")
sys.exit(1 if failures or errors or not examples else 0)
