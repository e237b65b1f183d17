#!/usr/bin/env bash
# One-command setup of smsbak on a fresh Termux. Safe to run again: it only does
# what is still missing, says what it does, and prints the next steps.
#
#   bash termux-setup.sh
#
# Environment: SMSBAK_SETUP_API_TIMEOUT (seconds to wait for the Termux:API app,
# default 20).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
packages=(python python-pip python-cryptography termux-api)
api_timeout="${SMSBAK_SETUP_API_TIMEOUT:-20}"
boot_dir="$HOME/.termux/boot"
boot_script="$boot_dir/smsbak-daemon"
# shellcheck disable=SC2016 # expanded by the boot script, at boot
log_dir='$HOME/.local/share/smsbak/logs'

say() { printf '\n==> %s\n' "$*"; }
fail() {
    local code="$1"
    shift
    printf '\nsmsbak setup stopped: %s\n' "$1" >&2
    shift
    local line
    for line in "$@"; do
        printf '%s\n' "$line" >&2
    done
    exit "$code"
}

# --- 1. Termux? ---------------------------------------------------------------
if [ -z "${PREFIX:-}" ] || [ ! -d "$PREFIX" ] || ! command -v pkg >/dev/null 2>&1; then
    fail 2 "this script is for Termux on Android (no \$PREFIX or no pkg command found)." \
        "Install Termux from F-Droid or GitHub and run it inside Termux." \
        "On another system install smsbak with: pip install $here"
fi
case "$api_timeout" in
    '' | *[!0-9]* | 0) fail 2 "SMSBAK_SETUP_API_TIMEOUT must be a whole number of seconds above 0: '$api_timeout'." ;;
esac

# --- 2. Termux packages ---------------------------------------------------------
is_installed() {
    dpkg -s "$1" 2>/dev/null | grep -q '^Status: install ok installed$'
}

missing=()
for package in "${packages[@]}"; do
    if ! is_installed "$package"; then
        missing+=("$package")
    fi
done
if [ "${#missing[@]}" -gt 0 ]; then
    say "Installing Termux packages: ${missing[*]}"
    if ! pkg install -y "${missing[@]}"; then
        fail 1 "pkg install ${missing[*]} failed." \
            "Check the network, run 'pkg update' (or 'termux-change-repo'), then run this script again."
    fi
    for package in "${missing[@]}"; do
        is_installed "$package" || fail 1 "the Termux package $package is still not installed."
    done
else
    say "Termux packages already installed: ${packages[*]}"
fi

# --- 3. Does the Termux:API app answer? -----------------------------------------
say "Checking that the Termux:API app answers (termux-battery-status, up to ${api_timeout} s)"
api_help=(
    "Install the Termux:API app from the same store as Termux (F-Droid or GitHub;"
    "apps from different stores cannot talk to each other), open it once,"
    "then run this script again."
)
if ! command -v termux-battery-status >/dev/null 2>&1; then
    fail 4 "termux-battery-status is missing although the termux-api package is installed." \
        "Run 'pkg install termux-api' and then this script again."
fi
answer=""
status=0
answer="$(timeout -k 5 "$api_timeout" termux-battery-status 2>/dev/null)" || status=$?
if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
    fail 4 "the Termux:API app did not answer within ${api_timeout} s." "${api_help[@]}"
fi
compact="$(printf '%s' "$answer" | tr -d ' \t\r\n')"
if [ "$status" -ne 0 ] || [[ "$compact" != \{*\} ]]; then
    fail 4 "the Termux:API app gave no usable answer (termux-battery-status exit $status)." \
        "${api_help[@]}"
fi
echo "The Termux:API app answers."

# --- 4. smsbak itself -------------------------------------------------------------
wanted_version="$(sed -n 's/^version *= *"\(.*\)"$/\1/p' "$here/pyproject.toml" | head -n 1)"
installed_version() {
    # From / so that the checkout in the current directory is not what gets imported.
    (cd / && python -c 'import smsbak; print(smsbak.__version__)') 2>/dev/null || true
}
current_version="$(installed_version)"
if [ -n "$wanted_version" ] && [ "$current_version" = "$wanted_version" ]; then
    say "smsbak $current_version is already installed"
else
    if [ -n "$current_version" ]; then
        say "Updating smsbak $current_version to ${wanted_version:-the version in $here}"
    else
        say "Installing smsbak ${wanted_version} from $here"
    fi
    # Termux's pip must never upgrade itself (pkg owns it); cryptography comes from
    # python-cryptography, so nothing needs a compiler.
    if ! PIP_DISABLE_PIP_VERSION_CHECK=1 pip install "$here"; then
        fail 1 "pip install $here failed (see pip's message above)." \
            "If it tried to build cryptography, run 'pkg install python-cryptography' first."
    fi
    current_version="$(installed_version)"
    if [ -z "$current_version" ]; then
        fail 1 "smsbak is still not importable after pip install."
    fi
    echo "smsbak $current_version is installed."
fi

# --- 5. Start at boot (Termux:Boot) ---------------------------------------------
boot_content="#!/data/data/com.termux/files/usr/bin/sh
# smsbak: background backups from boot, run by Termux:Boot. Written by termux-setup.sh.
termux-wake-lock
umask 077
mkdir -p \"$log_dir\"
# Android's phantom process killer ends children with signal 9: start again then
# (and after a crash); stop when the daemon ends by itself (SIGTERM, already running).
while :; do
    smsbak daemon >>\"$log_dir/boot.log\" 2>&1
    status=\$?
    if [ \"\$status\" -le 128 ] && [ \"\$status\" -ne 1 ]; then
        break
    fi
    sleep 30
done
"
current_boot=""
if [ -f "$boot_script" ]; then
    current_boot="$(cat "$boot_script"; printf x)"
    current_boot="${current_boot%x}"
fi
if [ "$current_boot" = "$boot_content" ]; then
    if [ "$(stat -c %a "$boot_script")" = 755 ]; then
        say "Boot script already in place: $boot_script"
    else
        say "Making the boot script executable: $boot_script"
        chmod 0755 "$boot_script"
    fi
else
    if [ -e "$boot_script" ]; then
        say "Updating the boot script $boot_script"
    else
        say "Writing the boot script $boot_script (starts 'smsbak daemon' at boot)"
    fi
    mkdir -p "$boot_dir"
    tmp="$boot_script.tmp.$$"
    printf '%s' "$boot_content" >"$tmp"
    chmod 0755 "$tmp"
    mv -f "$tmp" "$boot_script"
fi
echo "It runs when the phone starts, once the Termux:Boot app is installed"
echo "(from the same store as Termux) and has been opened once."

# --- 6. Next steps ----------------------------------------------------------------
cat <<'NEXT'

==> Next steps
1. Create your own Google OAuth client (README.md, "Google OAuth client setup")
   and copy its JSON to the phone, e.g. ~/storage/downloads/client_secret.json
   (run `termux-setup-storage` once to reach Downloads).
2. Log in:        smsbak auth --client-secrets ~/storage/downloads/client_secret.json
3. First backup:  smsbak backup
   Android asks Termux:API for SMS and Contacts permission the first time: allow both.
4. Background backups:
   - `smsbak daemon` starts at boot through Termux:Boot (the boot script above):
     install Termux:Boot from the same store as Termux and open it once.
     Start it now without a reboot:
       nohup sh ~/.termux/boot/smsbak-daemon >/dev/null 2>&1 &
   - or instead, let Android's job scheduler run backups: smsbak schedule install
5. Keep Android from stopping Termux in the background:
   - Settings > Apps > Termux > Battery: "Unrestricted" (battery optimisation off);
     the same for Termux:API and Termux:Boot.
   - Android 14 and later: Developer options > "Disable child process restrictions".
   - Android 12L and 13: from a computer with adb,
       adb shell settings put global settings_enable_monitor_phantom_procs false
   - Keep the CPU awake for Termux: termux-wake-lock (the boot script does this).
NEXT
