"""Where the repository is: the default places of a developer machine's git-ignored `var/` (local keys,
mail, traces) are found from here; deployments set them (JWT_*_FILE, EMAIL_FILE_PATH, OTEL_TRACES_DIR).
In the images `/app` mirrors the repository, so the same paths hold there. No service reads
topology.toml: deployments give them what it says (docs/development.md, "Configuration")."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
