import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text().splitlines()[-1]
    quick_start = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```(?:bash|sh)\n(.*?)\n```", quick_start, flags=re.S)
    assert len(commands) == 2, "the quick start is exactly two commands"
    assert commands[1].strip() == ci.strip()


def test_readme_merge_example_exists():
    readme = (ROOT / "README.md").read_text()
    quick_start = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    first = re.findall(r"```(?:bash|sh)\n(.*?)\n```", quick_start, flags=re.S)[0]
    folder = re.search(r"diffhdr merge (\S+)", first).group(1)
    assert (ROOT / folder).is_dir(), f"the quick start merges {folder}, which must be bundled"
