"""The workflow steps: one module per step, in one literal registry (no registration by import side effect).

Each module follows the shape documented in `kaic/stepkit.py`. Modules are imported on use, so
`kaic step provision` never pays for importing torch.
"""

STEPS: dict[str, str] = {
    "provision": "steps.provision",
    "data": "steps.data",
    "train": "steps.train",
    "serve": "steps.serve",
    "teardown": "steps.teardown",
    "report": "steps.report",
}
