# Sourced by scripts: a Python venv with what the tests and the demo need (aiosmtpd).
# The venv lives in .build/pyvenv so it is rebuilt with a clean checkout and never committed.
signoff_venv="${SIGNOFF_VENV:-$root/.build/pyvenv}"
if [ ! -x "$signoff_venv/bin/python" ] || ! "$signoff_venv/bin/python" -c 'import aiosmtpd' 2>/dev/null; then
    echo "setup: creating a Python venv with aiosmtpd in $signoff_venv" >&2
    mkdir -p "$(dirname "$signoff_venv")"
    python3 -m venv "$signoff_venv"
    "$signoff_venv/bin/pip" install -q --disable-pip-version-check aiosmtpd >&2
fi
SIGNOFF_PYTHON="$signoff_venv/bin/python"
