#!/bin/sh
# The README's test command: on a Debian machine with only Rust installed, install what the
# tests need, then run `cargo test --workspace` (extra arguments are passed on to it:
# `tests/setup-and-test.sh -p redo-tests --test query`). Safe to re-run: it installs only what
# is missing, uses sudo only when not root, and builds GNU make 4.4 once. `.ci/run` calls it.
#
# Installs (Debian packages, with apt-get): recutils, gcc, libc6-dev, make, ninja-build,
# graphviz, python3, bsdutils, vim-nox, emacs-nox, nginx, openssl, chromium, groff-base, and curl
# and xz-utils
# (to fetch the make 4.4 source); builds GNU make 4.4.1 into target/ci-tools/bin/make44 from
# Debian's source tarball (sha256-checked) when the system make is older than 4.4.
set -eu
cd "$(dirname "$0")/.."

need=""
command -v recsel >/dev/null 2>&1 || need="$need recutils"       # .rec files read back by GNU recutils
command -v cc >/dev/null 2>&1 || need="$need gcc libc6-dev"         # the example C project
command -v make >/dev/null 2>&1 || need="$need make"                # GNU make jobserver interop
command -v ninja >/dev/null 2>&1 || need="$need ninja-build"        # benchmark smoke test
command -v dot >/dev/null 2>&1 || need="$need graphviz"             # redo-dot output rendered in tests
command -v python3 >/dev/null 2>&1 || need="$need python3"          # lock and other-uid test helpers
command -v script >/dev/null 2>&1 || need="$need bsdutils"          # pseudo-terminal tests
command -v curl >/dev/null 2>&1 || command -v wget >/dev/null 2>&1 || need="$need curl"  # make 4.4 source
command -v xz >/dev/null 2>&1 || need="$need xz-utils"              # make 4.4 source
vim --version 2>/dev/null | grep -q '+job' || need="$need vim-nox" # contrib/editors/vim tests (headless, jobs)
command -v emacs >/dev/null 2>&1 || need="$need emacs-nox"          # contrib/editors/emacs tests (batch)
# nginx lives in /usr/sbin, which is not on every user's PATH.
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need="$need nginx"  # shared-cache tests (WebDAV server)
command -v openssl >/dev/null 2>&1 || need="$need openssl"          # shared-cache tests (TLS certificates)
[ -x /usr/bin/chromium ] || need="$need chromium"                   # --timings report opened in a headless browser
command -v groff >/dev/null 2>&1 || need="$need groff-base"         # man pages rendered (contrib/man, install.sh)
if [ -n "$need" ]; then
    sudo=""
    if [ "$(id -u)" != 0 ]; then
        command -v sudo >/dev/null 2>&1 || {
            echo "missing:$need; not root and no sudo: install them, or run this as root" >&2
            exit 1
        }
        sudo="sudo"
    fi
    echo "installing:$need"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    # shellcheck disable=SC2086
    $sudo apt-get install -y -qq --no-install-recommends $need
fi

# GNU make >= 4.4 (FIFO jobserver, --jobserver-auth=fifo:PATH) for tests/tests/jobs.rs, which
# look for target/ci-tools/bin/make44 when the system make is older (Debian 12 has 4.3). Built
# from Debian's source tarball with make's own build.sh (no make needed); skipped when it is
# already there or when the make on PATH is new enough.
make_is_44() {
    # $1: a make binary; true if it is GNU make >= 4.4.
    v=$("$1" --version 2>/dev/null | sed -n '1s/^GNU Make \([0-9][0-9]*\)\.\([0-9][0-9]*\).*/\1 \2/p')
    [ -n "$v" ] || return 1
    # shellcheck disable=SC2086
    set -- $v
    [ "$1" -gt 4 ] || { [ "$1" -eq 4 ] && [ "$2" -ge 4 ]; }
}
make44="$PWD/target/ci-tools/bin/make44"
if make_is_44 make; then
    echo "make on PATH is >= 4.4: not building make44"
elif [ -x "$make44" ] && make_is_44 "$make44"; then
    echo "make44 already built: $make44"
else
    echo "building GNU make 4.4.1 into $make44"
    src_url=http://deb.debian.org/debian/pool/main/m/make-dfsg/make-dfsg_4.4.1.orig.tar.xz
    src_sha=3b16b00ea1079af9f8096bbc71ff7cc00c249fc6a862003da3c42308a0adb0fe
    work="$PWD/target/ci-tools/make-build"
    rm -rf "$work"
    mkdir -p "$work" "$(dirname "$make44")"
    tarball="$work/make.tar.xz"
    if command -v curl >/dev/null 2>&1; then
        curl -fsSL --retry 3 -o "$tarball" "$src_url"
    else
        wget -q -O "$tarball" "$src_url"
    fi
    got=$(sha256sum "$tarball" | cut -d' ' -f1)
    if [ "$got" != "$src_sha" ]; then
        echo "make 4.4.1 source: sha256 mismatch (got $got, want $src_sha)" >&2
        exit 1
    fi
    (
        cd "$work"
        xz -dc make.tar.xz | tar -xf -
        cd make-4.4.1
        # The dfsg tarball has no doc/ directory, which configure expects.
        mkdir -p doc && printf 'all:\ninstall:\nclean:\n' > doc/Makefile.in
        ./configure --quiet --disable-nls --without-guile
        ./build.sh >/dev/null
        cp make "$make44.tmp"
    )
    mv "$make44.tmp" "$make44"
    make_is_44 "$make44" || { echo "the built $make44 is not make >= 4.4" >&2; exit 1; }
    rm -rf "$work"
    "$make44" --version | head -n 1
fi

cargo --version
cargo test --workspace "$@"
