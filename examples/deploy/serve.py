"""A minimal clone server (standard library only): the target is loaded once, and clone modules come and go live.

    python examples/deploy/serve.py --delta hf://ORG/CLONE@COMMIT --trusted-key release.pub [--port 8080]

    GET  /labels                      the dataset label of each output, and the modules
    POST /predict  {"inputs": [...]}  images as nested lists [N, C, H, W] (or [N, H, W]), values in [0, 1]
                                      -> {"labels": [...], "predictions": [label per image], "logits": [...]}
    POST /attach   {"delta": SPEC}    add the modules of another delta on the same target (hf://... or a path)
    POST /remove   {"classes": [...]} or {"modules": [i, ...]} or {"source": SPEC}: drop modules

Updates go through ``ClonedModel.attach``/``remove``: the delta is checked under the trust policy given here
(``--trusted-key``: a signature by one of them is required), its target must be this model's, its sources must match
their pins; a refused update answers 4xx with the error's class, exit code and message, and the running model is
left as it was. Requests are served in threads; a prediction sees the modules before or after an update, never half.
The first line on stdout is ``listening on http://HOST:PORT``.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import torch

import pnc_pack
from pnc_pack.errors import PncError
from pnc_pack.format.signing import load_public_key

MAX_BODY = 64 << 20
STATUS = {2: 400, 3: 422, 4: 403, 5: 409, 6: 409}  # a PncError's exit code -> HTTP status (else 502: Hub, ...)


class App:
    def __init__(self, model):
        self.model = model
        self.updates = 0
        self.lock = threading.Lock()  # one update at a time; predictions never wait for it

    def info(self) -> dict:
        d = self.model.delta
        return {"labels": self.model.output_labels, "updates": self.updates,
                "modules": [{"index": i, "source": m.source.short(), "classes": [lab.name for lab in d.labels
                                                                                  if lab.model == f"source:{i}"]}
                            for i, m in enumerate(d.modules)]}

    def predict(self, body: dict) -> dict:
        x = torch.tensor(body["inputs"], dtype=torch.float32)
        if x.dim() == 3:
            x = x.unsqueeze(1)
        if x.dim() != 4 or tuple(x.shape[1:]) != tuple(self.model.input_shape):
            raise pnc_pack.errors.UsageError(f"inputs must be [N, {', '.join(map(str, self.model.input_shape))}], "
                                             f"got {list(x.shape)}")
        with torch.no_grad():
            logits, labels = self.model.forward_labelled(x)  # one snapshot: never labels of another update
        return {"labels": labels, "predictions": [labels[i] for i in logits.argmax(1).tolist()],
                "logits": logits.tolist()}

    def attach(self, body: dict) -> dict:
        with self.lock:
            self.model.attach(body["delta"])
            self.updates += 1
        return self.info()

    def remove(self, body: dict) -> dict:
        with self.lock:
            if "modules" in body:
                self.model.remove([int(i) for i in body["modules"]])
            else:
                self.model.remove(source=body.get("source"), classes=body.get("classes"))
            self.updates += 1
        return self.info()


def handler(app: App):
    class Handler(BaseHTTPRequestHandler):
        def _send(self, code: int, obj: dict):
            data = json.dumps(obj).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> dict:
            n = int(self.headers.get("Content-Length") or 0)
            if n > MAX_BODY:
                raise pnc_pack.errors.UsageError(f"request body over {MAX_BODY} bytes")
            body = json.loads(self.rfile.read(n) or b"{}")
            if not isinstance(body, dict):
                raise pnc_pack.errors.UsageError("the request body must be a JSON object")
            return body

        def _route(self, fn, *args):
            try:
                self._send(200, fn(*args))
            except PncError as exc:
                self._send(STATUS.get(exc.exit_code, 502), {"error": type(exc).__name__, "exit_code": exc.exit_code,
                                                            "message": str(exc)})
            except (KeyError, ValueError, TypeError) as exc:
                self._send(400, {"error": type(exc).__name__, "exit_code": 2, "message": str(exc)})

        def do_GET(self):
            if self.path in ("/labels", "/health"):
                return self._route(app.info)
            self._send(404, {"error": "NotFound", "message": self.path})

        def do_POST(self):
            routes = {"/predict": app.predict, "/attach": app.attach, "/remove": app.remove}
            if self.path not in routes:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                return self._send(404, {"error": "NotFound", "message": self.path})
            try:
                body = self._body()
            except (ValueError, PncError) as exc:
                return self._send(400, {"error": type(exc).__name__, "exit_code": 2, "message": str(exc)})
            self._route(routes[self.path], body)

        def log_message(self, fmt, *args):  # one line per request on stderr
            sys.stderr.write("serve: " + fmt % args + "\n")

    return Handler


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--delta", required=True, help="the clone to serve first (a path or hf://ORG/NAME@REV)")
    ap.add_argument("--trusted-key", action="append", default=[], help="public key file (repeat); requires signatures")
    ap.add_argument("--models-dir", default=None)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8080, help="0: any free port")
    args = ap.parse_args(argv)
    keys = [load_public_key(k) for k in args.trusted_key]
    model = pnc_pack.apply(args.delta, trusted_keys=keys, require_signature=bool(keys), models_dir=args.models_dir)
    server = ThreadingHTTPServer((args.host, args.port), handler(App(model)))
    print(f"listening on http://{args.host}:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
