#!/usr/bin/env bash
# Set up dsa110-contimg on a fresh machine: WSClean (Debian), a virtualenv and the Python packages.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3

if ! command -v wsclean >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ]; then
    echo "== installing wsclean (Debian package)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq wsclean >/dev/null
  else
    echo "== wsclean is missing and we are not root: install the Debian package 'wsclean' (imaging falls back to tclean)"
  fi
fi

# headless Chromium + its driver for the dashboard's browser test (Debian packages)
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ]; then
    echo "== installing chromium and chromium-driver (Debian packages, for the browser test)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1 || {
      apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null; }
  else
    echo "== chromium/chromedriver missing and we are not root: install the Debian packages 'chromium' and 'chromium-driver' (the browser test is skipped without them)"
  fi
fi

if [ ! -x .venv/bin/python ]; then
  echo "== creating virtualenv .venv with $PYTHON"
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
echo "== installing Python packages"
.venv/bin/python -m pip install -q -e ".[test]"
# casacore logs SEVERE "Leap second table TAI_UTC seems out-of-date" when its TAI_UTC is over 180 days old;
# python-casacore's bundled table is frozen at its release.  astropy-iers-data (weekly releases) carries IERS's
# current Leap_Second.dat: take the newest now, and build casacore's measures folder from it (no network later).
echo "== refreshing leap-second data (astropy-iers-data) and building casacore's measures folder"
.venv/bin/python -m pip install -q --upgrade astropy-iers-data ||
  echo "== could not upgrade astropy-iers-data: keeping the installed one"
.venv/bin/python -m dsa110_contimg.casa_env ||
  echo "== could not build the measures folder: CASA will use python-casacore's bundled data"
echo "== setup done"
