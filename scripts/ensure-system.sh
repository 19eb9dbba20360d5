#!/usr/bin/env bash
# Install the Debian packages Rindle needs, only when missing.
#   ensure-system.sh        libvips (image variants; Debian's build decodes HEIC) and ffmpeg
#                           (ffprobe analysis, video and audio variants)
#   ensure-system.sh test   ... plus chromium for the browser tests and Node.js for the JS tests
set -euo pipefail
need=()
dpkg -s libvips42 >/dev/null 2>&1 || need+=(libvips42)
command -v ffmpeg >/dev/null 2>&1 && command -v ffprobe >/dev/null 2>&1 || need+=(ffmpeg)
if [ "${1:-}" = test ]; then
  dpkg -s chromium >/dev/null 2>&1 || need+=(chromium)
  command -v node >/dev/null 2>&1 || need+=(nodejs npm)
fi
if [ ${#need[@]} -gt 0 ]; then
  echo "installing system packages: ${need[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
