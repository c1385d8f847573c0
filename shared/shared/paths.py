"""Where the repository is: topology.toml and the git-ignored `var/` (local keys, mail, traces) are found
from here. In the images `/app` mirrors the repository, so the same paths hold there."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
