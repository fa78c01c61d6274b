#!/usr/bin/env bash
# Install the system packages the project uses, when they are missing and apt is usable.
#   scripts/ensure_system.sh data      -> Fashion-MNIST (Debian package dataset-fashion-mnist)
#   scripts/ensure_system.sh browser   -> Debian's chromium, for the end-to-end tests
# Idempotent: does nothing (fast) when everything is already there.
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then SUDO="sudo -n"; else SUDO="none"; fi
fi

apt_install() {
  if ! command -v apt-get >/dev/null || [ "$SUDO" = "none" ]; then
    return 1
  fi
  # Refresh the package index only when the package is unknown to it.
  if ! apt-cache show "$1" >/dev/null 2>&1; then $SUDO apt-get update -q >/dev/null; fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "$@" >/dev/null
}

case "${1:-}" in
  data)
    if [ -n "${FMNIST_DATA_DIR:-}" ] || [ -f data/FashionMNIST/raw/t10k-labels-idx1-ubyte ] \
      || [ -f /usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz ]; then exit 0; fi
    if apt_install dataset-fashion-mnist; then
      echo "installed Fashion-MNIST from the Debian package dataset-fashion-mnist"
    else
      echo "note: could not install dataset-fashion-mnist (no apt or no root);" \
        "Fashion-MNIST will be downloaded by torchvision on first use (needs internet)"
    fi
    ;;
  browser)
    for b in /usr/bin/chromium /usr/lib/chromium/chromium; do [ -x "$b" ] && exit 0; done
    if ! apt_install chromium; then
      echo "error: the end-to-end tests need Debian's chromium: sudo apt-get install chromium" >&2
      exit 1
    fi
    ;;
  *) echo "usage: $0 data|browser" >&2; exit 2 ;;
esac
