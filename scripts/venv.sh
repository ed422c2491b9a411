#!/usr/bin/env bash
# Create .venv in the repo root and install Chronoseal into it (idempotent).
# Re-installs only when a requirements or project file changed since the last install.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
stamp=.venv/.installed
need_install=0
if [ ! -x .venv/bin/python ]; then
  if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "Chronoseal needs Python 3.11 or newer as '$PY' (set PYTHON=/path/to/python3.11)." >&2
    exit 1
  fi
  if ! "$PY" -m venv .venv 2>/dev/null; then
    rm -rf .venv
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      echo "python3-venv is missing; installing it with apt-get" >&2
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
      "$PY" -m venv .venv
    else
      echo "Python's venv module is missing: install it with 'sudo apt-get install python3-venv' and run the command again." >&2
      exit 1
    fi
  fi
  need_install=1
fi
# The pages' browser tests (Playwright) drive Debian's Chromium: Playwright's own download is
# not reachable, so install the distribution's when missing.
if [ ! -x /usr/bin/chromium ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "chromium is missing (browser tests); installing it with apt-get" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
# The exhibit (issue 15 §2): WeasyPrint prints certificate.pdf with pango and fontconfig, a CJK
# font covers Chinese; the tests read PDFs with pdftotext (Chromium: above).
exhibit_missing=()
command -v fc-list >/dev/null || exhibit_missing+=(fontconfig)
ldconfig -p 2>/dev/null | grep -q libpango-1.0 || exhibit_missing+=(libpango-1.0-0 libpangoft2-1.0-0)
fc-list :lang=zh-cn family 2>/dev/null | grep -q . || exhibit_missing+=(fonts-wqy-microhei)
command -v pdftotext >/dev/null || exhibit_missing+=(poppler-utils)
if [ ${#exhibit_missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing ${exhibit_missing[*]} with apt-get (certificate.pdf and its tests)" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${exhibit_missing[@]}" >/dev/null
  else
    echo "missing for certificate.pdf and its tests: ${exhibit_missing[*]} (sudo apt-get install ${exhibit_missing[*]})" >&2
  fi
fi
for f in requirements.txt requirements-dev.txt pyproject.toml; do
  [ "$f" -nt "$stamp" ] && need_install=1
done
[ -f "$stamp" ] || need_install=1
if [ "$need_install" = 1 ]; then
  .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
  .venv/bin/python -m pip install -q --disable-pip-version-check -r requirements-dev.txt -e .
  touch "$stamp"
fi
