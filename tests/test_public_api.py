"""``import salrank`` is light, and every name of the public API resolves to a documented object."""

from __future__ import annotations

import subprocess
import sys

import salrank


def test_every_public_name_resolves_and_is_documented() -> None:
    for name in salrank.__all__:
        obj = getattr(salrank, name)
        if name != "__version__":
            assert obj.__doc__, f"salrank.{name} has no docstring"
    assert set(salrank.__all__) <= set(dir(salrank))


def test_import_does_not_load_torch() -> None:
    code = "import sys, salrank; print('torch' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "False"
