"""Checks on the real MovieLens latest-small archive from ../shared/data (they fail, not skip, when CI=true)."""

import pytest
from click.testing import CliRunner

from conftest import REPO, require_shared_data, write_params
from movierec import data
from movierec.cli import cli
from movierec.params.project import load_params

pytestmark = pytest.mark.slow


@pytest.fixture
def shared_data():
    return require_shared_data()


def test_download_real_archive_from_local_server_and_prepare_matches_notebook(shared_data, http_server, tmp_path, monkeypatch):
    root, base = http_server
    (root / "ml-latest-small.zip").symlink_to(shared_data / "ml-latest-small.zip")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(data.MIRROR_ENV, raising=False)
    write_params(tmp_path / "params.yaml", {"data": {"base_url": base}})
    runner = CliRunner()
    result = runner.invoke(cli, ["download"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli, ["prepare"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "n_users=610, n_movies=9724, n_ratings=100836, n_train=85710, n_test=15126" in result.output


def test_official_checksums_in_params_match_the_shared_archive(shared_data):
    expected = dict(line.split()[::-1] for line in (shared_data / "CONTENT_SHA256").read_text().splitlines() if line.strip())
    params = load_params(REPO / "params.yaml")
    for name, digest in params.data.sha256.items():
        assert expected[name] == digest
