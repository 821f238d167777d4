#!/usr/bin/env bash
# Unpacks Exim 4, OpenSMTPD and sendmail into a private folder (default /opt/ticketbooth-mtas, or
# $TICKETBOOTH_MTAS_DIR) for test/smtp/smtp-legacy-mtas.test.ts. Debian's packages of these MTAs
# conflict with postfix, which the other tests need installed, so they are not installed: each .deb
# is unpacked with `dpkg -x` and its binary run from there with its own config file. Their shared
# libraries do not conflict and are installed normally; msmtp installs normally too (.ci/run).
# Idempotent: a second run with the same package versions does nothing. Needs root and apt.
set -euo pipefail

dest="${TICKETBOOTH_MTAS_DIR:-/opt/ticketbooth-mtas}"
packages=(exim4-daemon-light exim4-base exim4-config opensmtpd sendmail-bin sendmail-base sendmail-cf)
libraries=(libidn12 libgnutls-dane0 libgnutls30 libidn2-0 libnsl2 libpcre2-8-0 libdb5.3 libcrypt1 libevent-2.1-7 libpam0g libssl3
  zlib1g libldap-2.5-0 liblockfile1 libsasl2-2 libwrap0 m4)

export DEBIAN_FRONTEND=noninteractive
versions() {
  for p in "${packages[@]}"; do
    printf '%s=%s\n' "$p" "$(apt-cache policy "$p" | awk '/Candidate:/ { print $2 }')"
  done
}
wanted="$(versions)"
if [[ -f "$dest/.versions" && "$(cat "$dest/.versions")" == "$wanted" ]] && grep -q . <<<"$wanted"; then
  echo "install-mtas: $dest is up to date"
  exit 0
fi
if grep -q '=$\|=(none)$' <<<"$wanted"; then
  apt-get update -qq
  wanted="$(versions)"
fi

apt-get install -y -qq --no-install-recommends "${libraries[@]}" >/dev/null
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# apt's sandbox user must be able to write where it downloads.
chmod 0777 "$work"
(cd "$work" && apt-get download -qq "${packages[@]}")
rm -rf "$dest.new"
mkdir -p "$dest.new"
for deb in "$work"/*.deb; do dpkg -x "$deb" "$dest.new"; done
rm -rf "$dest"
mv "$dest.new" "$dest"
printf '%s\n' "$wanted" >"$dest/.versions"

# Exim refuses to run without its system user (the Debian package's postinst would create it).
getent passwd Debian-exim >/dev/null || useradd --system --no-create-home --home-dir /var/spool/exim4 --shell /usr/sbin/nologin Debian-exim
# OpenSMTPD drops privileges to these users (the opensmtpd package's postinst would create them).
getent passwd opensmtpd >/dev/null || useradd --system --no-create-home --home-dir /var/empty --shell /usr/sbin/nologin opensmtpd
getent passwd opensmtpq >/dev/null || useradd --system --no-create-home --home-dir /var/empty --shell /usr/sbin/nologin opensmtpq
# Its compiled-in spool (the tests bind a temp dir over it in a mount namespace) and the empty directory it chroots into.
mkdir -p /var/spool/smtpd /var/lib/opensmtpd/empty
# sendmail runs its queue runs and deliveries as smmsp where it can.
getent group smmsp >/dev/null || groupadd --system smmsp
getent passwd smmsp >/dev/null || useradd --system --no-create-home --home-dir /var/lib/sendmail --shell /usr/sbin/nologin -g smmsp smmsp
echo "install-mtas: unpacked ${packages[*]} into $dest"
