#!/usr/bin/env python3
"""Offline checks of what kaic deploys (run by `make lint`): the chart's values against its schema, the
chart's copies of the compiled workflows, every manifest kaic generates against Kubernetes/Argo/KServe
schemas, Pod Security "restricted", and the steps' RBAC against the calls they make. See docs/deploy.md.

Usage: .venv/bin/python scripts/verify_deploy.py [CHART_DIR]
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kaic.deploy_check.report import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
