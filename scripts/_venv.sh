# Sourced by scripts/run and scripts/test: make .venv if missing, (re)install when pyproject changes.
# Usage: ensure_venv [extras]   e.g. ensure_venv dev
ensure_venv() {
  local extras="${1:-}"
  local python="${PYTHON:-python3}"
  if [[ ! -x .venv/bin/python ]]; then
    echo "setting up .venv with $($python --version 2>&1)" >&2
    "$python" -m venv .venv
  fi
  local spec="." stamp
  [[ -n "$extras" ]] && spec=".[${extras}]"
  local hash
  hash="$(sha256sum < pyproject.toml | cut -c1-16)"
  stamp=".venv/.installed-${hash}-${extras:-base}"
  # the base install is part of every extras install: a dev venv serves scripts/run as is
  if [[ -z "$extras" ]] && compgen -G ".venv/.installed-${hash}-*" >/dev/null; then
    return 0
  fi
  if [[ ! -f "$stamp" ]]; then
    echo "installing prometheus-backend${extras:+ with $extras extras} into .venv" >&2
    .venv/bin/python -m pip install --quiet --upgrade pip >&2 || true
    .venv/bin/python -m pip install --quiet -e "$spec" >&2
    touch "$stamp"
  fi
}
