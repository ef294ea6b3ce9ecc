#!/usr/bin/env bash
# Installs the system packages callfunnel needs (Debian/Ubuntu): espeak-ng (phonemes for Piper
# and the simulated caller's voice), sox, cmake + clang/libclang (whisper.cpp build), pip
# (model packages come from PyPI). Idempotent: installs only what is missing.
set -euo pipefail

command -v cargo >/dev/null || { echo "error: cargo not found: install Rust (https://rustup.rs) first" >&2; exit 1; }

need=()
command -v espeak-ng >/dev/null || need+=(espeak-ng)
command -v sox >/dev/null || need+=(sox)
command -v cmake >/dev/null || need+=(cmake)
command -v clang >/dev/null || need+=(clang)
compgen -G "/usr/lib/llvm-*/lib/libclang*.so*" >/dev/null || compgen -G "/usr/lib/x86_64-linux-gnu/libclang*.so*" >/dev/null || need+=(libclang-dev)
command -v python3 >/dev/null || need+=(python3)
python3 -m pip --version >/dev/null 2>&1 || need+=(python3-pip)
python3 -c "import ensurepip" >/dev/null 2>&1 || need+=(python3-venv)  # the provider SDK venv (tests)
command -v npm >/dev/null || need+=(nodejs npm)  # the OIDC test provider (tests)

if ((${#need[@]})); then
  echo "installing system packages: ${need[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi
