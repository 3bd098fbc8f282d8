"""README's "Use the pieces" example, run as written: the package's public names keep doing what it shows."""

import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def readme_example() -> str:
    text = README.read_text()
    section = text[text.index("## Use the pieces"):]
    section = section[:section.index("\n## ", 1)]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 1, "the section holds one python example"
    return blocks[0]


def test_the_readme_example_is_at_most_ten_lines():
    assert len(readme_example().strip().splitlines()) <= 10


def test_the_readme_example_trains_a_tiny_rotnet(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(readme_example(), "README.md (Use the pieces)", "exec"), scope)
    record, spec = scope["record"], scope["spec"]
    assert [m["metric"] for m in record["metrics"]] == ["rotation_acc"] and len(record["history"]) == 1
    assert 0 <= record["metrics"][-1]["value"] <= 100
    assert (tmp_path / "runs" / "mine" / spec.run_id / "model.pt").exists()
    assert "rotation_acc" in capsys.readouterr().out
