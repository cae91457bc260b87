#!/usr/bin/env bash
# ci-rerun.sh: a CI step that dispatches a Loom job with jobctl and passes
# the job id on to later steps.
#
# Usage:
#   examples/ci-rerun.sh [ARGS...]      # ARGS go to the worker's command (one `args` tag)
#
# Environment (set these from CI secrets/variables, never on the command line):
#   JOBCTL_TOKEN       Cashu token paying for the job (required; jobctl reads it
#                      from the environment, so it never appears in argv)
#   JOBCTL_WORKER      worker pubkey, npub or hex (required)
#   JOBCTL_RELAYS      comma-separated relay URLs, ws:// or wss:// (required)
#   JOBCTL_SECRET_KEY  your signing key, nsec or hex (or a key file via the config)
#   GITHUB_OUTPUT      set by GitHub Actions; receives `job_id=<id>`
#
# Example (GitHub Actions):
#   - id: dispatch
#     run: examples/ci-rerun.sh -j build
#     env:
#       JOBCTL_TOKEN: ${{ secrets.JOBCTL_TOKEN }}
#       JOBCTL_SECRET_KEY: ${{ secrets.JOBCTL_SECRET_KEY }}
#       JOBCTL_WORKER: npub1...
#       JOBCTL_RELAYS: wss://relay.example.com,wss://relay2.example.com
#   - run: echo "job ${{ steps.dispatch.outputs.job_id }}"
#
# Exit codes: 0 dispatched; 1 too few relays accepted or a runtime failure;
# 2 bad input (nothing was signed or published).
#
# Do not add -v/-vvv or RUST_LOG=debug here: debug logs of the Nostr
# library print the whole event, token included.
set -euo pipefail

die() {
  echo "ci-rerun: $*" >&2
  exit 2
}

# An empty token is an error in jobctl ("the payment token is empty");
# say which variable is missing instead.
[[ -n "${JOBCTL_TOKEN:-}" ]] || die "JOBCTL_TOKEN is not set (the Cashu token paying for the job)"
[[ -n "${JOBCTL_WORKER:-}" ]] || die "JOBCTL_WORKER is not set (the worker's npub or hex pubkey)"
[[ -n "${JOBCTL_RELAYS:-}" ]] || die "JOBCTL_RELAYS is not set (comma-separated ws:// or wss:// URLs)"
command -v jobctl >/dev/null 2>&1 || die "jobctl is not on PATH (cargo install --path .)"

# Retries of this CI run should not dispatch twice. jobctl has no
# --idempotency-key yet; when it does, pass the CI run id, e.g.
#   --idempotency-key "${GITHUB_RUN_ID:-}-${GITHUB_RUN_ATTEMPT:-}"

# stdout of jobctl is the job id only; its relay table goes to stderr (the
# CI log), with the token redacted.
rc=0
id=$(jobctl rerun --min-accept 1 -- "$@") || rc=$?

case "$rc" in
  0) ;;
  1)
    if [[ -n "$id" ]]; then
      echo "ci-rerun: job $id was signed but too few relays accepted it; see the table above (exit 1)" >&2
    else
      echo "ci-rerun: jobctl failed at run time; see the error above (exit 1)" >&2
    fi
    exit 1
    ;;
  2)
    echo "ci-rerun: jobctl rejected the input (token, worker, relays, key or config); nothing was published (exit 2)" >&2
    exit 2
    ;;
  *)
    echo "ci-rerun: jobctl exited with unexpected code $rc" >&2
    exit "$rc"
    ;;
esac

if [[ ! "$id" =~ ^[0-9a-f]{64}$ ]]; then
  echo "ci-rerun: jobctl succeeded but printed no job id: '$id'" >&2
  exit 1
fi

if [[ -n "${GITHUB_OUTPUT:-}" ]]; then
  echo "job_id=$id" >>"$GITHUB_OUTPUT"
fi
echo "$id"
