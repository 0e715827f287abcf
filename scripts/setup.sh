#!/usr/bin/env bash
# Set up steve_qt on Debian with Python 3.11: system packages (when root), a venv in .venv,
# the CPU build of torch, and the project with its test extras. Safe to run again (fast then).
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  libportaudio2 libasound2-plugins alsa-utils          # sounddevice / playback
  espeak-ng libespeak-ng1 sox                          # sample synthesis
  poppler-utils                                        # pdffonts/pdftotext in figure tests
  praat                                                # TextGrids we write are read back by Praat
  xvfb xauth libegl1 libgl1 libxkbcommon0 libxkbcommon-x11-0 libxcb-cursor0
  libxcb-icccm4 libxcb-keysyms1 libxcb-shape0 libxcb-randr0 libxcb-render-util0
  libxcb-image0 libxcb-xinerama0 libfontconfig1 libdbus-1-3 fonts-dejavu-core
)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "setup: please install with apt-get: ${missing[*]}" >&2
  fi
fi

PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  if command -v python3.11 >/dev/null; then PY=python3.11; else PY=python3; fi
fi
[ -x .venv/bin/python ] || "$PY" -m venv .venv
export PIP_DISABLE_PIP_VERSION_CHECK=1
# torch first and pinned: 2.13.0 is the CPU build; an unpinned torch pulls a multi-GB CUDA build.
.venv/bin/python -c "import torch" 2>/dev/null || .venv/bin/pip install -q -c requirements/constraints.txt torch==2.13.0
.venv/bin/pip install -q -c requirements/constraints.txt -e '.[test]'
