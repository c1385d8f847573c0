"""Where things are in the repository and in the virtualenv."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = ROOT / "shared"
SANDBOX_DIR = ROOT / "sandbox"
KEYS_DIR = ROOT / "var" / "keys"  # one JWT key pair for every local instance, made by `up`
VENV_DIR = ROOT / ".venv"
VENV_BIN = VENV_DIR / "bin"
VENV_PYTHON = VENV_BIN / "python"
