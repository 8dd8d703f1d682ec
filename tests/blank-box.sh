#!/bin/bash
# The README's two commands on a blank Debian 12, cold: `tests/blank-box.sh [WORKDIR]` (as root,
# needs debootstrap; about an hour on 2 cores). What it proves and measures is in
# docs/benchmarks.md ("A blank box").
#
# The box: `debootstrap bookworm` plus what rustup itself needs (ca-certificates, and gcc with
# libc6-dev as the linker), this machine's Rust toolchain copied in, and a clean clone of this
# checkout's HEAD. Nothing else: no cmake, clang, pkg-config, ALSA, Python or espeak-ng. It is
# entered with pivot_root in its own mount namespace (not chroot), so the workers' user-namespace
# sandbox works as on a real box. Where this network intercepts TLS with its own CA, that CA
# (from /usr/local/share/ca-certificates) is trusted inside too: a fact of the network, not of
# the box.
#
# Then `cargo xtask demo`, `cargo xtask test` and `cargo xtask lint`, each timed, with the disk
# used and what was downloaded (Debian packages, crates, models, pip) after each.
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "run as root (debootstrap, mounts)" >&2; exit 1; }
HERE="$(cd "$(dirname "$0")/.." && pwd)"
WORK="${1:-/var/tmp/scribe-blank}"
ROOT="$WORK/root"
OUT="$WORK/results"
TOOLCHAIN="${RUSTUP_HOME:-$HOME/.rustup}/toolchains/stable-x86_64-unknown-linux-gnu"

if [ ! -e "$ROOT/etc/debian_version" ]; then
    command -v debootstrap >/dev/null || apt-get install -y -qq debootstrap
    debootstrap --include=ca-certificates,gcc,libc6-dev bookworm "$ROOT" http://deb.debian.org/debian
    if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
        cp /usr/local/share/ca-certificates/*.crt "$ROOT/usr/local/share/ca-certificates/"
    fi
    mkdir -p "$ROOT/root/.rustup/toolchains" "$ROOT/root/.cargo/bin"
    cp -a "$TOOLCHAIN" "$ROOT/root/.rustup/toolchains/"
    printf 'version = "12"\ndefault_toolchain = "stable-x86_64-unknown-linux-gnu"\nprofile = "default"\n' \
        >"$ROOT/root/.rustup/settings.toml"
    cp -a "$(command -v rustup)" "$ROOT/root/.cargo/bin/rustup"
    for tool in cargo rustc rustdoc cargo-clippy clippy-driver cargo-fmt rustfmt; do
        ln -sf rustup "$ROOT/root/.cargo/bin/$tool"
    done
fi

# Runs "$1" as root inside the box.
inside() {
    cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
    unshare --mount --fork --propagation private bash -c '
        set -e
        mount --bind "$1" "$1"
        mount -t proc proc "$1/proc"
        mount --rbind /sys "$1/sys"
        mount --rbind /dev "$1/dev"
        cd "$1"; mkdir -p .oldroot; pivot_root . .oldroot; cd /; umount -l /.oldroot
        exec env -i HOME=/root USER=root LANG=C.UTF-8 TERM=dumb \
            PATH=/root/.cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin bash -c "$2"
    ' inside "$ROOT" "$1"
}
inside 'update-ca-certificates >/dev/null'

size() { du -sxb "$ROOT/$1" 2>/dev/null | cut -f1 || echo 0; }
mark() {
    {
        echo "== after $1: $(date -u +%FT%TZ)"
        echo "disk used by the box (less the toolchain): $(cd "$ROOT" && du -sxb --exclude=./root/.rustup . | cut -f1)"
        for d in var/cache/apt/archives root/.cargo/registry/cache root/.cache/scribe/models \
            root/.cache/scribe/target root/scribe/target root/.cache/pip; do
            echo "$d: $(size "$d")"
        done
    } >>"$OUT/summary.txt"
}

rm -rf "$OUT" "$ROOT/root/scribe"
mkdir -p "$OUT"
git clone -q "$HERE" "$ROOT/root/scribe"
git -C "$ROOT/root/scribe" log --oneline -1 >"$OUT/summary.txt"
mark start
for step in demo test lint; do
    started=$(date +%s)
    status=0
    inside "cd /root/scribe && cargo xtask $step" >"$OUT/$step.log" 2>&1 || status=$?
    echo "cargo xtask $step: exit $status in $(($(date +%s) - started)) s" >>"$OUT/summary.txt"
    mark "$step"
done
cat "$OUT/summary.txt"
