"""A separate process for the hub tests: "another machine" with its own environment and Hub cache.

    python tests/hub/child.py cli ARGS...        the pnc-pack command line (exit code = the CLI's)
    python tests/hub/child.py fetch SPEC         pull SPEC, fetch every model it pins; print JSON
    python tests/hub/child.py fetchref REF_JSON  fetch_model(ModelRef.from_dict(REF_JSON)); print JSON
    python tests/hub/child.py resolve SPEC       resolve_model(SPEC); print JSON

Networking is loopback-only (netguard): anything else exits with code 99. HF_ENDPOINT must point at 127.0.0.1.
Errors print {"error": class name, "exit": code, "message": text} and exit with the error's code.
"""

import json
import os
import sys
from urllib.parse import urlsplit

import netguard


def _files(folder):
    from pnc_pack.refs import sha256_file

    names = ("config.json", "model.safetensors")
    return {p.name: sha256_file(p).sha256 for p in sorted(folder.iterdir()) if p.name in names}


def main(argv):
    host = urlsplit(os.environ.get("HF_ENDPOINT", "")).hostname
    if host not in ("127.0.0.1", "localhost"):
        print(f"child: HF_ENDPOINT must point at loopback, got {os.environ.get('HF_ENDPOINT')!r}", file=sys.stderr)
        return 98
    netguard.install()
    mode, args = argv[0], argv[1:]
    if mode == "cli":
        from pnc_pack.cli import main as cli_main

        rc = cli_main(args)
        if os.environ.get("PNC_CHILD_NO_TORCH") == "1" and "torch" in sys.modules:
            print("child: the command imported torch", file=sys.stderr)
            return 97
        return rc
    from pnc_pack.errors import PncError

    try:
        import pnc_pack.hub as hub
        from pnc_pack.refs import ModelRef, sha256_file

        if mode == "fetch":
            pulled = hub.pull(args[0])
            path, commit, delta = pulled.path, pulled.commit, pulled.delta
            folders = hub.fetch_models(delta.refs)
            out = {"commit": commit, "delta_sha256": sha256_file(path).sha256, "path": str(path),
                   "models": [{"uri": r.uri(), "folder": str(f), "files": _files(f)}
                              for r, f in zip(delta.refs, folders)]}
        elif mode == "fetchref":
            ref = ModelRef.from_dict(json.loads(args[0]))
            folder = hub.fetch_model(ref)
            out = {"folder": str(folder), "files": _files(folder)}
        elif mode == "resolve":
            _r = hub.resolve_model(args[0])
            folder, ref = _r.folder, _r.ref
            out = {"folder": str(folder), "ref": ref.to_dict()}
        else:
            print(f"child: unknown mode {mode}", file=sys.stderr)
            return 2
    except PncError as exc:
        print(json.dumps({"error": type(exc).__name__, "exit": exc.exit_code, "message": str(exc)}))
        return exc.exit_code
    print(json.dumps(out, sort_keys=True))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except netguard.ForbiddenNetworkAccess as exc:
        print(f"child: {exc}", file=sys.stderr)
        sys.exit(99)
