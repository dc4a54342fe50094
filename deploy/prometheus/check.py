#!/usr/bin/env python3
"""Checks the alert rules and keeps the Kubernetes copy of them in step (run by the test command).

1. `promtool check rules rules.yml`: syntax, PromQL and annotation templates.
2. `promtool test rules rules.test.yml`: each alert fires on the series that should raise it and
   stays quiet on a healthy group. promtool compares rendered annotations too, so the tests run
   against a copy of the rules without them: the tests are about when an alert fires, and the
   texts are checked by step 1.
3. deploy/monitoring.yaml (a ServiceMonitor and a PrometheusRule for the Prometheus Operator)
   carries exactly rules.yml's groups: `--write` regenerates it, a check fails when it differs.

    python3 deploy/prometheus/check.py          # all three checks
    python3 deploy/prometheus/check.py --write  # regenerate deploy/monitoring.yaml
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
RULES = HERE / "rules.yml"
TESTS = HERE / "rules.test.yml"
OPERATOR = HERE.parent / "monitoring.yaml"

OPERATOR_HEAD = """\
# For clusters with the Prometheus Operator (kube-prometheus-stack): `kubectl apply -f
# deploy/monitoring.yaml` beside `kubectl apply -k deploy/`. Not in kustomization.yaml, since
# both kinds exist only where the operator is installed. The PrometheusRule carries the groups
# of deploy/prometheus/rules.yml, written by `python3 deploy/prometheus/check.py --write` (the
# test command fails when the two differ). Your Prometheus may select rules and monitors by a
# label (often `release: <its release name>`): add it to both metadata.labels.
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: pulse
  labels:
    app.kubernetes.io/name: pulse
spec:
  selector:
    matchLabels:
      app.kubernetes.io/name: pulse
  endpoints:
    - port: http
      path: /metrics
      interval: 15s
---
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: pulse
  labels:
    app.kubernetes.io/name: pulse
spec:
"""


def rule_lines() -> list[str]:
    """rules.yml from its `groups:` line on (its leading comments stay behind)."""
    lines = RULES.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("groups:"))
    return lines[start:]


def without_annotations(lines: list[str]) -> list[str]:
    out, skip_deeper = [], None
    for line in lines:
        indent = len(line) - len(line.lstrip())
        if skip_deeper is not None and (not line.strip() or indent > skip_deeper):
            continue
        skip_deeper = None
        if line.strip() == "annotations:":
            skip_deeper = indent
            continue
        out.append(line)
    return out


def operator_manifest() -> str:
    return OPERATOR_HEAD + "".join(f"  {line}\n" if line else "\n" for line in rule_lines())


def run(*cmd: str, cwd: Path | None = None) -> None:
    print("==> " + " ".join(cmd), file=sys.stderr, flush=True)
    subprocess.run(cmd, cwd=cwd, check=True)


def main() -> int:
    if "--write" in sys.argv[1:]:
        OPERATOR.write_text(operator_manifest())
        return 0
    promtool = shutil.which("promtool")
    if not promtool:
        print("check: promtool is missing (Debian/Ubuntu: apt-get install prometheus)", file=sys.stderr)
        return 1
    run(promtool, "check", "rules", str(RULES))
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "rules.yml").write_text("\n".join(without_annotations(rule_lines())) + "\n")
        shutil.copy(TESTS, Path(tmp, "rules.test.yml"))
        run(promtool, "test", "rules", "rules.test.yml", cwd=Path(tmp))
    if not OPERATOR.exists() or OPERATOR.read_text() != operator_manifest():
        print(f"check: {OPERATOR} does not carry rules.yml's groups: run {Path(__file__).name} --write",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except subprocess.CalledProcessError as e:
        sys.exit(e.returncode or 1)
