"""Every ```python block of the READMEs (the package's and the repository's) runs, in a folder
holding the sample image under the names the snippets use."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from conftest import REPO, SAMPLE

READMES = [REPO / "bindings-python" / "README.md", REPO / "README.md"]
BLOCKS = [
    (readme, code)
    for readme in READMES
    for code in re.findall(r"```python\n(.*?)```", readme.read_text(), re.S)
]


@pytest.mark.parametrize(
    ("readme", "code"), BLOCKS, ids=[f"{r.parent.name}-{i}" for i, (r, _) in enumerate(BLOCKS)]
)
def test_readme_block(readme: Path, code: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    for name in ("sunrise.jpg", "photo.jpg"):
        shutil.copy(SAMPLE, tmp_path / name)
    monkeypatch.chdir(tmp_path)
    exec(compile(code, str(readme), "exec"), {})


def test_every_readme_has_python_blocks():
    for readme in READMES:
        assert any(r == readme for r, _ in BLOCKS), readme
