"""redis-fencing as a package index would show it: the sdist and the wheel build, pass
`twine check --strict`, carry the version, addresses and classifiers, and the README reads
right away from this checkout (absolute links into the project's addresses only). And the
install from a git URL with `#subdirectory=fencing`, the one the README gives.

The builds are isolated (pip brings setuptools>=77 into the build environment, from its
cache or the index, as `pip install ./fencing` does). Budget: about 30 s.
"""

from __future__ import annotations

import email.parser
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

import fencing

LIBRARY = Path(__file__).resolve().parents[2] / "fencing"
PROJECT = tomllib.loads((LIBRARY / "pyproject.toml").read_text())["project"]
README = (LIBRARY / "README.md").read_text()
# What only makes sense inside the repository: paths into the services or the tests.
REPOSITORY_ONLY = re.compile(r"this repository|\borders/|\binvoices/|\bservicekit|\btests/"
                             r"|\bdevstack|make \w+|\]\((?!https://)")

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def run(*command: str | Path, cwd: Path) -> str:
    done = subprocess.run([str(part) for part in command], cwd=cwd, capture_output=True,
                          text=True, timeout=240)
    assert done.returncode == 0, f"{command}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def copy_of_the_library(into: Path) -> Path:
    source = into / "fencing"
    shutil.copytree(LIBRARY, source, ignore=shutil.ignore_patterns(
        "__pycache__", "build", "dist", "*.egg-info"))
    return source


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("build")
    run(sys.executable, "-m", "build", "--outdir", work / "dist", copy_of_the_library(work),
        cwd=work)
    return work / "dist"


def test_the_sdist_and_the_wheel_pass_twine_check_strict(dist: Path) -> None:
    built = sorted(path.name for path in dist.iterdir())
    version = fencing.__version__
    assert built == [f"redis_fencing-{version}-py3-none-any.whl",
                     f"redis_fencing-{version}.tar.gz"]
    out = run(sys.executable, "-m", "twine", "check", "--strict", *sorted(dist.iterdir()),
              cwd=dist)
    assert out.count("PASSED") == 2, out


def test_the_wheel_carries_the_version_addresses_and_classifiers(dist: Path) -> None:
    wheel = next(dist.glob("*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = email.parser.Parser().parsestr(archive.read(name).decode())
    assert metadata["Version"] == fencing.__version__
    assert metadata["Description-Content-Type"] == "text/markdown"
    assert metadata.get_payload().strip() == README.strip()
    urls = dict(url.split(", ", 1) for url in metadata.get_all("Project-URL"))
    assert {"Documentation", "Repository", "Changelog"} <= set(urls)
    classifiers = metadata.get_all("Classifier")
    assert [c for c in classifiers if c.startswith("Programming Language :: Python :: 3.")] \
        == ["Programming Language :: Python :: 3.11", "Programming Language :: Python :: 3.12",
            "Programming Language :: Python :: 3.13"]
    assert any(c.startswith("Development Status :: ") for c in classifiers)
    assert "fencing token" in metadata["Keywords"]
    # No upper bound on redis-py: the day 9.0 ships, adopters can take it.
    assert metadata.get_all("Requires-Dist")[0] == "redis>=5.0.1"


def test_the_readme_reads_right_on_a_package_index() -> None:
    assert REPOSITORY_ONLY.search(README) is None, REPOSITORY_ONLY.search(README)
    addresses = tuple(PROJECT["urls"].values())
    links = re.findall(r"https?://[^\s)\"#]+", README)
    assert links, "the README links to the docs"
    assert all(link.startswith(addresses) for link in links), \
        [link for link in links if not link.startswith(addresses)]
    install = f'pip install "redis-fencing @ git+{PROJECT["urls"]["Repository"]}' \
              '#subdirectory=fencing"'
    assert install in README


def test_the_changelog_keeps_a_changelog() -> None:
    changelog = (LIBRARY / "CHANGELOG.md").read_text()
    assert changelog.startswith("# Changelog\n")
    assert "https://keepachangelog.com/" in changelog
    assert "\n## [Unreleased]\n" in changelog
    assert "\n[Unreleased]: " + PROJECT["urls"]["Repository"] in changelog


def test_pip_installs_it_from_a_git_url_with_the_subdirectory(tmp_path: Path) -> None:
    # A repository of its own holding the library the way the project's does: in fencing/.
    repo = tmp_path / "repo"
    repo.mkdir()
    copy_of_the_library(repo)
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.invalid"]
    run(*git, "init", "-q", cwd=repo)
    run(*git, "add", ".", cwd=repo)
    run(*git, "commit", "-qm", "the library", cwd=repo)
    target = tmp_path / "site"
    run(sys.executable, "-m", "pip", "--disable-pip-version-check", "install", "-q",
        "--no-deps", "--target", target,
        f"redis-fencing @ git+file://{repo}#subdirectory=fencing", cwd=tmp_path)
    assert (target / "fencing" / "testing.py").is_file()
    assert (target / f"redis_fencing-{fencing.__version__}.dist-info").is_dir()
