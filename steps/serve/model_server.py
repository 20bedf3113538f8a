"""kaic's model server: KServe's ModelServer serving the exported TorchScript model over V2.

    python -m steps.serve.model_server --model-dir DIR [--http-port 8080] [--workers 1]

DIR holds `model.pt` (TorchScript, CPU, input float32 [batch, features] already scaled, output logits)
and `model.json` (`name`, `input_shape`, `classes`...). The same module runs locally (a process started
by the serve step) and on a cluster (the InferenceService's container, DIR = /mnt/models filled by
KServe's storage initializer), so both paths serve identical code. Endpoints are KServe's own:
`/v2/health/ready`, `/v2/models/<name>/ready`, `/v2/models/<name>/infer`, `/metrics` (Prometheus,
with the `request_predict_seconds` histogram per model).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import uuid
from pathlib import Path
from typing import Any

from steps.serve.v2 import OUTPUT_NAME


def read_model_meta(model_dir: Path) -> dict[str, Any]:
    meta: dict[str, Any] = json.loads((model_dir / "model.json").read_text())
    if not isinstance(meta.get("name"), str) or not isinstance(meta.get("input_shape"), list):
        raise ValueError(f"{model_dir / 'model.json'}: needs 'name' (str) and 'input_shape' (list)")
    return meta


def build_model(model_dir: Path, threads: int) -> Any:
    """A loaded kserve.Model over the TorchScript file (imports torch and kserve: call in the server)."""
    import numpy as np
    import torch
    from kserve import InferOutput, InferRequest, InferResponse, Model
    from kserve.errors import InvalidInput

    meta = read_model_meta(model_dir)
    width = int(meta["input_shape"][0])
    torch.set_num_threads(threads)

    class TorchScriptModel(Model):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__(meta["name"])
            self.net: Any = None

        def load(self) -> bool:
            self.net = torch.jit.load(str(model_dir / "model.pt"), map_location="cpu").eval()  # type: ignore[no-untyped-call]
            self.ready = True
            return True

        async def predict(
            self,
            payload: InferRequest,
            headers: dict[str, str] | None = None,
            response_headers: dict[str, str] | None = None,
        ) -> InferResponse:
            if not isinstance(payload, InferRequest) or not payload.inputs:
                raise InvalidInput("expected a V2 inference request with one FP32 input")
            x = np.asarray(payload.inputs[0].as_numpy(), dtype=np.float32)
            if x.ndim != 2 or x.shape[1] != width:
                raise InvalidInput(f"input shape {list(x.shape)}: expected [batch, {width}]")
            with torch.inference_mode():
                logits = self.net(torch.from_numpy(x)).numpy()
            out = InferOutput(OUTPUT_NAME, list(logits.shape), "FP32", logits.reshape(-1).tolist())
            return InferResponse(payload.id or str(uuid.uuid4()), self.name, [out])

    model = TorchScriptModel()
    model.load()
    return model


def bind_host(host: str) -> None:
    """KServe 0.21's REST server binds 0.0.0.0 unconditionally; bind `host` instead (loopback locally)."""
    import kserve.model_server as ks

    class HostRESTServer(ks.RESTServer):  # type: ignore[misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.config.host = host

    ks.RESTServer = HostRESTServer


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m steps.serve.model_server", description=__doc__.splitlines()[0]
    )
    p.add_argument("--model-dir", type=Path, required=True)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (a container wants 0.0.0.0)")
    p.add_argument("--http-port", type=int, default=8080)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (a tiny model wants 1)")
    p.add_argument("--access-log", action="store_true", help="log every request (KServe's default; off here)")
    a = p.parse_args(argv)
    if not (a.model_dir / "model.pt").is_file():
        print(f"--model-dir {a.model_dir}: no model.pt there", file=sys.stderr)
        return 2
    sys.argv = sys.argv[:1]  # kserve.model_server parses sys.argv when imported: give it nothing of ours
    from kserve import ModelServer

    bind_host(a.host)
    model = build_model(a.model_dir, a.threads)
    server = ModelServer(
        http_port=a.http_port, workers=a.workers, enable_grpc=False, enable_latency_logging=False
    )
    if not a.access_log:  # three log lines per request would cost the server more than the model does
        for name in ("uvicorn.access", "kserve.trace"):
            logging.getLogger(name).setLevel(logging.WARNING)
    server.start([model])
    return 0


if __name__ == "__main__":
    sys.exit(main())
