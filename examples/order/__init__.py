"""An order workflow shaped as a diamond: validate -> {reserve inventory, charge payment} -> ship -> notify."""

from pathlib import Path

TEMPLATE_PATH = Path(__file__).with_name("order_process.yaml")
