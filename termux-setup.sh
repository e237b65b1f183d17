#!/usr/bin/env bash
# One-command setup of smsbak on a fresh Termux. Safe to run again: it only
# installs what is missing and prints the next steps.
#
#   bash termux-setup.sh
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
packages=(python python-pip python-cryptography termux-api)

say() { printf '\n==> %s\n' "$*"; }

if [ -z "${PREFIX:-}" ] || ! command -v pkg >/dev/null 2>&1; then
    echo "This script is for Termux on Android (no \$PREFIX or pkg found)." >&2
    echo "On another system: pip install ." >&2
    exit 2
fi

missing=()
for package in "${packages[@]}"; do
    if ! dpkg -s "$package" >/dev/null 2>&1; then
        missing+=("$package")
    fi
done
if [ "${#missing[@]}" -gt 0 ]; then
    say "Installing Termux packages: ${missing[*]}"
    pkg install -y "${missing[@]}"
else
    say "Termux packages already installed: ${packages[*]}"
fi

say "Checking that the Termux:API app answers"
if timeout 20 termux-battery-status >/dev/null 2>&1; then
    echo "Termux:API answers."
else
    echo "Termux:API did not answer within 20 s." >&2
    echo "Install the Termux:API app from the same store as Termux (F-Droid or GitHub)," >&2
    echo "open it once, then run this script again." >&2
    exit 4
fi

say "Installing smsbak from $here"
# Termux's pip must not upgrade itself; cryptography comes from python-cryptography.
if python -c 'import smsbak, sys; sys.exit(0 if smsbak.__version__ else 1)' >/dev/null 2>&1 \
    && [ "$(python -c 'import smsbak; print(smsbak.__version__)')" = "$(sed -n 's/^version = "\(.*\)"/\1/p' "$here/pyproject.toml")" ]; then
    echo "smsbak $(python -c 'import smsbak; print(smsbak.__version__)') is already installed."
else
    pip install --no-cache-dir "$here"
fi

cat <<'NEXT'

==> Next steps
1. Create your own Google OAuth client (README.md, "Google OAuth client setup")
   and copy its JSON to the phone, e.g. ~/storage/downloads/client_secret.json
   (run `termux-setup-storage` once to reach Downloads).
2. Log in:        smsbak auth --client-secrets ~/storage/downloads/client_secret.json
3. First backup:  smsbak backup
   Android asks Termux:API for SMS and Contacts permission the first time: allow both.
4. Keep Android from killing Termux: Settings > Apps > Termux > Battery > Unrestricted,
   and on Android 14+ Developer options > "Disable child process restrictions".
NEXT
