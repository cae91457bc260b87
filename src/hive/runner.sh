#!/usr/bin/env bash
# jobctl's built-in Hive CI runner script (what Budabit's runner does):
# clone the repository, run the workflow with `act`, upload the log to
# Blossom and publish the run's 5402 result with `jobctl ci report`.
# Needs on the worker: git with a nostr:// remote helper (ngit), act, and
# jobctl (or $JOBCTL). Reads the HIVE_CI_* environment of the job.
set -u
: "${HIVE_CI_RUN_ID:?}" "${HIVE_CI_REPOSITORY:?}" "${HIVE_CI_WORKFLOW:?}"
jobctl_bin="${JOBCTL:-jobctl}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
log="$work/run.log"
start="$(date +%s)"
code=0
{
  if [ -n "${HIVE_CI_BRANCH:-}" ]; then
    git clone --quiet --branch "$HIVE_CI_BRANCH" "$HIVE_CI_REPOSITORY" "$work/repo"
  else
    git clone --quiet "$HIVE_CI_REPOSITORY" "$work/repo"
  fi &&
    cd "$work/repo" &&
    { [ -z "${HIVE_CI_COMMIT:-}" ] || git checkout --quiet "$HIVE_CI_COMMIT"; } &&
    act -W "$HIVE_CI_WORKFLOW"
} >"$log" 2>&1 || code=$?
cat "$log"
"$jobctl_bin" ci report --exit-code "$code" --duration "$(( $(date +%s) - start ))" --log "$log" ||
  echo "runner: could not report the result" >&2
exit "$code"
