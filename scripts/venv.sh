# Sourced by the check scripts (notebooks, parity, tensorboard, browser): make_venv DIR REQUIREMENTS creates a Python
# virtual environment in DIR (installing python3 and venv with apt-get when missing) and installs the
# pinned requirements into it.
make_venv() {
  local venv=$1 requirements=$2
  if ! command -v python3 >/dev/null || ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    echo "installing python3 and venv"
    local sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq python3 python3-venv >/dev/null
  fi
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
}

# lab_bin: LAB_BIN, unless set, is the dev build of lab (built when missing); exported.
lab_bin() {
  if [ -z "${LAB_BIN:-}" ]; then
    LAB_BIN="$(realpath -m "${CARGO_TARGET_DIR:-target}")/debug/lab"
    [ -x "$LAB_BIN" ] || cargo build --locked
  fi
  export LAB_BIN
}
