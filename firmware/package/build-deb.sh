#!/bin/sh
# Builds scribe_VERSION_ARCH.deb from built binaries: build-deb.sh BIN_DIR VERSION OUT_DIR
# (`cargo xtask deb` builds the binaries and calls this). The patient data stays out of the
# package: /var/lib/scribe (the database, key, config, recordings) is created, never shipped or
# removed, and /opt/scribe's releases are managed by `scribe update`.
set -eu
BIN_DIR=$1
VERSION=$2
OUT_DIR=$3
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
ARCH=$(dpkg --print-architecture)
STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
chmod 0755 "$STAGE"

install -d "$STAGE/DEBIAN" "$STAGE/usr/lib/scribe/bin" "$STAGE/usr/bin" \
    "$STAGE/lib/systemd/system" "$STAGE/usr/share/scribe" "$STAGE/usr/share/doc/scribe"
for bin in scribe scribe-asr-worker scribe-draft-worker; do
    install -m 0755 "$BIN_DIR/$bin" "$STAGE/usr/lib/scribe/bin/$bin"
done
install -m 0755 "$HERE/scribe.sh" "$STAGE/usr/bin/scribe"
install -m 0644 "$HERE"/systemd/*.service "$HERE"/systemd/*.socket "$STAGE/lib/systemd/system/"
install -m 0644 "$HERE/gpu-worker.conf" "$STAGE/usr/share/scribe/"
install -m 0644 "$ROOT/README.md" "$ROOT/ARCHITECTURE.md" "$ROOT/docs/runbook.md" "$STAGE/usr/share/doc/scribe/"
sed "s/@VERSION@/$VERSION/" "$HERE/postinst" > "$STAGE/DEBIAN/postinst"
install -m 0755 "$HERE/prerm" "$STAGE/DEBIAN/prerm"
chmod 0755 "$STAGE/DEBIAN/postinst"
SIZE=$(du -sk "$STAGE" | cut -f1)
cat > "$STAGE/DEBIAN/control" <<CONTROL
Package: scribe
Version: $VERSION
Architecture: $ARCH
Maintainer: Scribe developers <scribe@localhost>
Installed-Size: $SIZE
Depends: adduser, libc6, libasound2 | libasound2t64, libgomp1, libstdc++6
Recommends: nftables
Section: misc
Priority: optional
Description: on-premises ambient clinical documentation
 Records a visit, transcribes it with a local whisper model, drafts a note
 with a local LLM constrained to the clinic's template, and keeps it
 encrypted until a physician signs it. Nothing leaves the clinic's network.
CONTROL
mkdir -p "$OUT_DIR"
OUT="$OUT_DIR/scribe_${VERSION}_${ARCH}.deb"
dpkg-deb --root-owner-group --build "$STAGE" "$OUT" >/dev/null
echo "$OUT"
