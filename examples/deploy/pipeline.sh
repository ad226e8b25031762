#!/usr/bin/env bash
# The deployment pipeline the workflow (github-workflow.yml here) runs: from a clone delta pushed to
# the Hub to a checked ONNX artifact, or a refusal with a documented exit code.
#   1. pull the delta at a pinned commit (never a moving branch);
#   2. verify it against the trusted keys (a signature by one of them is required);
#   3. apply it (every pinned model fetched and checked) with gates on the eval data, and export ONNX, checked
#      with onnxruntime: a failed gate exits 8, a graph that does not answer like torch 9; nothing is written then;
#   4. smoke inference with onnxruntime on the exported file alone (smoke.py);
#   5. publish: the delta, the ONNX graph, its sidecar and the reports, moved into ARTIFACT_DIR in one step.
# Settings (environment): DELTA_REPO, DELTA_COMMIT (40 hex), TRUSTED_KEY (a .pub file), EVAL_DATA (a dataset
# spec), MIN_ORI, MIN_TAR, MAX_ORI_DROP (percent), ARTIFACT_DIR; HF_ENDPOINT / HF_TOKEN as for huggingface_hub.
set -euo pipefail
: "${DELTA_REPO:?}" "${DELTA_COMMIT:?}" "${TRUSTED_KEY:?}" "${ARTIFACT_DIR:?}"
EVAL_DATA=${EVAL_DATA:-digits}
PNC=${PNC_PACK:-pnc-pack}
PY=${PYTHON:-python}
HERE=$(cd "$(dirname "$0")" && pwd)
if ! [[ "$DELTA_COMMIT" =~ ^[0-9a-f]{40}$ ]]; then
  echo "DELTA_COMMIT must be a full 40-hex commit sha (got '$DELTA_COMMIT'): a pipeline pins what it ships" >&2
  exit 2
fi
mkdir -p "$(dirname "$ARTIFACT_DIR")"
WORK=$(mktemp -d "${ARTIFACT_DIR%/}.work.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

echo "== pull $DELTA_REPO@$DELTA_COMMIT"
$PNC pull "$DELTA_REPO@$DELTA_COMMIT" -o "$WORK/clone.pncd"
echo "== verify against $TRUSTED_KEY"
$PNC verify "$WORK/clone.pncd" --trusted-key "$TRUSTED_KEY" --require-signature --json > "$WORK/verify.json"
echo "== apply with gates (Ori >= ${MIN_ORI:-0}%, Tar >= ${MIN_TAR:-0}%, Ori drop <= ${MAX_ORI_DROP:-100} points), export ONNX"
$PNC apply "$WORK/clone.pncd" --trusted-key "$TRUSTED_KEY" --require-signature --eval-data "$EVAL_DATA" \
  --min-ori "${MIN_ORI:-0}" --min-tar "${MIN_TAR:-0}" --max-ori-drop "${MAX_ORI_DROP:-100}" \
  --export-onnx "$WORK/model.onnx" --json > "$WORK/apply.json"
echo "== smoke inference with onnxruntime"
$PY "$HERE/smoke.py" "$WORK/model.onnx" --data "$EVAL_DATA" > "$WORK/smoke.json"
echo "== publish to $ARTIFACT_DIR"
rm -rf "$ARTIFACT_DIR"
mv "$WORK" "$ARTIFACT_DIR"
trap - EXIT
cat "$ARTIFACT_DIR/smoke.json"
