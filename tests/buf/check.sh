#!/usr/bin/env bash
# Checks the public protos (proto/missive/v1) with buf, configured by buf.yaml at the root:
#   1. buf lint                         the STANDARD rules, less the exceptions in buf.yaml
#   2. buf format --diff --exit-code    the files are as `buf format -w` leaves them
#   3. buf breaking                     FILE compatibility with a baseline from git:
#        - $BUF_BREAKING_AGAINST when set, as a buf input, used as it is
#          (e.g. '.git#branch=release,subdir=proto', or a directory holding missive/v1);
#        - else the most recent tag v<digit>… reachable from HEAD;
#        - else HEAD~1, the commit before the checked-out one;
#        - skipped, with a note, outside a git checkout or with no such commit (a first
#          commit, or a shallow clone: fetch more history or set BUF_BREAKING_AGAINST).
#      The working tree's protos, committed or not, are what is compared.
# buf comes from npm, pinned in tests/buf/package.json and package-lock.json, and is
# installed with `npm ci` into target/buf-node the first time (again when either changes).
# Every check runs; the script exits non-zero when any failed. tests/protos.rs runs it under
# `cargo test`; it needs bash, git, node and npm.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"

# --- buf, installed from the lock file -------------------------------------------------
node_dir="$root/target/buf-node"
buf="$node_dir/node_modules/.bin/buf"
stamp="$node_dir/installed.stamp"
wanted="$(cat tests/buf/package.json tests/buf/package-lock.json)"
if [ ! -x "$buf" ] || [ "$(cat "$stamp" 2>/dev/null || true)" != "$wanted" ]; then
  echo "== installing buf into target/buf-node (npm ci)"
  mkdir -p "$node_dir"
  rm -f "$stamp"
  cp tests/buf/package.json tests/buf/package-lock.json "$node_dir/"
  # --ignore-scripts: the package's postinstall only swaps its launcher for the platform
  # binary; the launcher finds that binary by itself.
  (cd "$node_dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
  printf '%s' "$wanted" >"$stamp"
fi
# buf's cache (modules, git clones) stays under target/ too.
export BUF_CACHE_DIR="${BUF_CACHE_DIR:-$node_dir/cache}"
echo "== buf $("$buf" --version)"

failed=()
check() {
  local name="$1"
  shift
  echo "== $name"
  if "$@"; then
    echo "ok"
  else
    local status=$?
    echo "FAILED: $name (exit $status)"
    failed+=("$name")
  fi
}

check "buf lint" "$buf" lint
check "buf format --diff --exit-code" "$buf" format --diff --exit-code

# --- buf breaking ------------------------------------------------------------------------
against="${BUF_BREAKING_AGAINST:-}"
config=()
if [ -n "$against" ]; then
  echo "== baseline: $against (BUF_BREAKING_AGAINST)"
elif ! git rev-parse --git-dir >/dev/null 2>&1; then
  echo "== buf breaking skipped: not a git checkout, and BUF_BREAKING_AGAINST is not set"
else
  tag="$(git describe --tags --abbrev=0 --match 'v[0-9]*' HEAD 2>/dev/null || true)"
  if [ -n "$tag" ]; then
    base="$tag"
  elif git rev-parse --quiet --verify 'HEAD~1^{commit}' >/dev/null; then
    base="HEAD~1"
  else
    base=""
    shallow="$(git rev-parse --is-shallow-repository 2>/dev/null || echo false)"
    if [ "$shallow" = true ]; then
      echo "== buf breaking skipped: a shallow clone without HEAD~1 and no v* tag" \
        "(fetch more history, e.g. git fetch --deepen=1, or set BUF_BREAKING_AGAINST)"
    else
      echo "== buf breaking skipped: HEAD has no parent and there is no v* tag"
    fi
  fi
  if [ -n "$base" ]; then
    sha="$(git rev-parse --verify "$base^{commit}")"
    # The repository's object store, also right from a linked worktree.
    git_dir="$(git rev-parse --path-format=absolute --git-common-dir)"
    # Its protos are under proto/ whether or not it has a buf.yaml.
    against="$git_dir#format=git,ref=$sha,subdir=proto"
    echo "== baseline: $base ($sha)"
    if ! git cat-file -e "$sha:buf.yaml" 2>/dev/null; then
      # A baseline from before buf.yaml had no go_package / java_* options: adding them is
      # a FILE-level change, but nothing generated Go or Java code from those files. So
      # the four rules about exactly those options are left out, and nothing else (see
      # buf.yaml). This keeps buf.yaml's module (proto) and breaking rules (FILE).
      echo "   it predates buf.yaml: FILE less FILE_SAME_GO_PACKAGE and FILE_SAME_JAVA_*"
      config=(--config '{"version": "v2", "modules": [{"path": "proto"}], "breaking": {"use": ["FILE"], "except": ["FILE_SAME_GO_PACKAGE", "FILE_SAME_JAVA_MULTIPLE_FILES", "FILE_SAME_JAVA_OUTER_CLASSNAME", "FILE_SAME_JAVA_PACKAGE"]}}')
    fi
  fi
fi
if [ -n "$against" ]; then
  check "buf breaking" "$buf" breaking ${config[@]+"${config[@]}"} --against "$against"
fi

if [ "${#failed[@]}" -gt 0 ]; then
  echo "== failed:"
  printf '   %s\n' "${failed[@]}"
  exit 1
fi
echo "== all buf checks passed"
