#!/bin/sh
# contrib/install.sh PREFIX: installs redo under PREFIX.
#
#   PREFIX/bin/redo, PREFIX/bin/redod        the two programs
#   PREFIX/bin/redo-ifchange, ...            the commands: links to redo (it runs as the name
#                                            it is called by)
#   PREFIX/share/man/man1/*.1, man8/redod.8  the man pages (contrib/man)
#   PREFIX/share/bash-completion/completions/{redo,redo-*}
#   PREFIX/share/zsh/site-functions/_redo
#   PREFIX/share/fish/vendor_completions.d/{redo,redo-*}.fish
#
# The binaries are the release build of this checkout: `cargo build --release` is run first
# (it does nothing when they are up to date). REDO_BUILD_DIR=DIR takes the binaries from DIR
# instead and builds nothing (the tests install the debug build that way).
#
# Safe to run again (what is there is replaced, nothing else is touched) and with any PREFIX,
# spaces included. POSIX sh.
set -eu

if [ "$#" -ne 1 ] || [ -z "$1" ]; then
    echo "usage: contrib/install.sh PREFIX   (e.g. /usr/local, or \$HOME/.local)" >&2
    exit 2
fi
prefix=$1
src=$(cd "$(dirname "$0")/.." && pwd)

if [ -n "${REDO_BUILD_DIR:-}" ]; then
    build=$REDO_BUILD_DIR
else
    command -v cargo >/dev/null 2>&1 || {
        echo "install.sh: cargo is not on PATH: install Rust (https://rustup.rs), or set REDO_BUILD_DIR to a directory holding redo and redod" >&2
        exit 1
    }
    (cd "$src" && cargo build --release --locked -p redo-client -p redod)
    # .cargo/config.toml builds for the host triple explicitly: target/<triple>/release.
    host=$(rustc -vV | sed -n 's/^host: //p')
    build=${CARGO_TARGET_DIR:-$src/target}/$host/release
fi
for b in redo redod; do
    [ -f "$build/$b" ] && [ -x "$build/$b" ] || {
        echo "install.sh: $build/$b is missing" >&2
        exit 1
    }
done

commands="redo-ifchange redo-ifcreate redo-always redo-stamp redo-whichdo redo-targets
redo-sources redo-ood redo-affects redo-dot redo-log redo-cleanup redo-depfix"

# put SOURCE DEST MODE: copies SOURCE to DEST through a temporary beside it, then renames it
# into place, so that a running redo (or a daemon about to start) never sees half a file.
put() {
    tmp="$2.install-tmp.$$"
    rm -f "$tmp"
    cp "$1" "$tmp"
    chmod "$3" "$tmp"
    mv -f "$tmp" "$2"
}

# link TARGET NAME: NAME becomes a symbolic link to TARGET (relative), replacing what was there.
link() {
    rm -f "$2"
    ln -s "$1" "$2"
}

bin=$prefix/bin
man=$prefix/share/man
bash_dir=$prefix/share/bash-completion/completions
zsh_dir=$prefix/share/zsh/site-functions
fish_dir=$prefix/share/fish/vendor_completions.d
mkdir -p "$bin" "$man/man1" "$man/man8" "$bash_dir" "$zsh_dir" "$fish_dir"

put "$build/redo" "$bin/redo" 755
put "$build/redod" "$bin/redod" 755
for c in $commands; do
    link redo "$bin/$c"
done

for page in "$src"/contrib/man/*.1; do
    put "$page" "$man/man1/${page##*/}" 644
done
put "$src/contrib/man/redod.8" "$man/man8/redod.8" 644

put "$src/contrib/completions/redo.bash" "$bash_dir/redo" 644
put "$src/contrib/completions/_redo" "$zsh_dir/_redo" 644
put "$src/contrib/completions/redo.fish" "$fish_dir/redo.fish" 644
for c in $commands; do
    link redo "$bash_dir/$c"
    link redo.fish "$fish_dir/$c.fish"
done

echo "installed redo into $prefix (commands in $bin)"
