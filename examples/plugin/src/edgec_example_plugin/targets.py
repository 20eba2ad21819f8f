"""``edgec.targets``: a target profile shipped as a YAML file inside the package."""

from pathlib import Path


def example_board() -> Path:
    return Path(__file__).with_name("example_board.yaml")
