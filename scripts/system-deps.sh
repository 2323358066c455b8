#!/usr/bin/env bash
# Install the Debian packages Backdesk's build and tests need, when they are missing.
# Run as root it installs them with apt-get; otherwise it says what to install.
set -euo pipefail

# command (or absolute path) to check:package
NEEDED=(
  "python3:python3"
  "gcc:build-essential"
  "Xvfb:xvfb"                 # a real X screen for the agent's windows in tests
  "xdotool:xdotool"           # drives those windows like a person would
  "xterm:xterm"               # a real X client for remote-session typing tests and bench/
  "x11vnc:x11vnc"             # the peer bench/ measures remote sessions against
  "xdpyinfo:x11-utils"
  "chromium:chromium"         # the web console's browser tests (Playwright drives it)
  "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf:fonts-dejavu-core"  # text in screenshots
)
# Tk for the agent's windows, in the Python that makes the venv.
python3 -c 'import tkinter' 2>/dev/null || NEEDED+=("__missing__:python3-tk")
# `python3 -m venv` needs ensurepip, which Debian ships apart.
python3 -c 'import ensurepip' 2>/dev/null || NEEDED+=("__missing__:python3-venv")

missing=()
for entry in "${NEEDED[@]}"; do
  cmd=${entry%%:*}
  pkg=${entry#*:}
  if [[ $cmd == /* ]]; then
    [ -e "$cmd" ] || missing+=("$pkg")
  else
    command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  echo "Installing system packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
else
  echo "Missing system packages: ${missing[*]}" >&2
  echo "Install them (e.g. sudo apt-get install ${missing[*]}) and run make again." >&2
  exit 1
fi
