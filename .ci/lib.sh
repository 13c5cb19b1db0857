# shared by .ci/run (every pull request) and .ci/nightly (a schedule): the environment, the cached venvs and `step`,
# which runs a command and keeps its wall time for the closing lines. Sourced, not run.
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 HYPOTHESIS_PROFILE=ci TOKENIZERS_PARALLELISM=false
# the planted secret corpus is drawn on a fixed seed (tests/secrets/test_secret_corpus.py): a red CI means a change,
# not a draw; sweeps over seeds are the bench's (`make bench-secrets`)

# The venvs are the slow installs (torch, the test extras; Colab's versions): kept where the CI machine keeps its
# caches, one per (Python, pyproject.toml, constraints) so a change of versions builds a new one; each run re-points
# the editable install at its own clone, which takes seconds when nothing else changed. REPOTUNE_CI_CACHE=off builds
# them inside the clone, as a newcomer's `make` does. Two CI runs at once on one machine must not share a cache.
CACHE=${REPOTUNE_CI_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/repotune-ci}
key() { cat "$@" | sha256sum | cut -c1-16; }
if [ "$CACHE" = off ]; then
  VENV=.venv COLAB_VENV=.venv-colab
else
  mkdir -p "$CACHE"
  VENV=$CACHE/venv-$(python3 --version | tr -d ' ')-$(key pyproject.toml constraints.txt)
  COLAB_VENV=$CACHE/venv-colab-$(key pyproject.toml notebooks/colab/constraints.txt)
fi
echo "== ${CI_NAME:-ci}: venvs $VENV ($([ -x "$VENV/bin/python" ] && echo reused || echo new)), $COLAB_VENV" >&2

timings=()
report() {
  local rc=$?
  echo "== ${CI_NAME:-ci}: $([ "$rc" = 0 ] && echo passed || echo "FAILED (exit $rc)") in $SECONDS s" >&2
  printf '  %s\n' "${timings[@]}" >&2
}
trap report EXIT
step() {  # step NAME COMMAND...: run it, print and keep its wall time
  local name=$1 start=$SECONDS rc=0
  shift
  echo "== ${CI_NAME:-ci}: $name" >&2
  "$@" || rc=$?
  timings+=("$(printf '%-44s %5d s%s' "$name" $((SECONDS - start)) "$([ "$rc" = 0 ] || echo ", failed")")")
  echo "== ${CI_NAME:-ci}: $name: $((SECONDS - start)) s" >&2
  return "$rc"
}

# the README's test command, failing when a test fails or none ran (pytest exits 5 when it collects nothing). Each line
# chained: `step` runs it where `set -e` does not reach, so an unchained failing pipeline would pass (one did, 2026-12-08)
make_test() {
  make test VENV="$VENV" 2>&1 | tee /tmp/repotune-ci-test.log || return
  grep -Eq '[0-9]+ passed' /tmp/repotune-ci-test.log || { echo "ci: no test ran" >&2; return 1; }
}

# the browser test of `repotune serve` drives Debian's Chromium: install it when absent, and let that test fail
# (not skip) if it is still missing
browser() {
  if ! { [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; }; then
    local sudo
    sudo=$([ "$(id -u)" = 0 ] || echo sudo)
    $sudo apt-get update -qq && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
  fi
}
