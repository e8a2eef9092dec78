"""Each gateway instance counts in its own metrics directory: fresh when it starts, never another's."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from apps.proxy.checks import check_metrics_settings
from edge_project.metrics_dir import ENVIRONMENT_VARIABLE, instance_name, is_running, prepare_metrics_dir


@pytest.fixture
def restored_environment() -> Any:
    before = os.environ.get(ENVIRONMENT_VARIABLE)
    yield
    if before is None:
        os.environ.pop(ENVIRONMENT_VARIABLE, None)
    else:
        os.environ[ENVIRONMENT_VARIABLE] = before


def dead_pid() -> int:
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()
    return finished.pid


def test_it_names_an_instance_by_its_pid_and_start_time_so_a_reused_pid_starts_afresh():
    name = instance_name(os.getpid())

    assert name.startswith(f"{os.getpid()}-") and is_running(name)
    assert not is_running(f"{os.getpid()}-1")  # this pid, but a process that started at another time
    assert not is_running(f"{dead_pid()}-12345")


def test_it_removes_dead_instances_directories_and_keeps_live_ones_and_strangers(tmp_path: Path,
                                                                                 restored_environment: None):
    dead = tmp_path / f"{dead_pid()}-777"
    alive = tmp_path / instance_name(os.getppid())
    stranger = tmp_path / "grafana-data"
    for directory in (dead, alive, stranger):
        directory.mkdir()
        (directory / "counter_1.db").write_bytes(b"x")

    mine = prepare_metrics_dir(tmp_path)

    assert mine == tmp_path / instance_name(os.getpid())
    assert os.environ[ENVIRONMENT_VARIABLE] == str(mine)
    assert mine.is_dir() and not dead.exists()
    assert (alive / "counter_1.db").exists() and (stranger / "counter_1.db").exists()


def test_a_second_call_in_the_same_instance_keeps_what_the_first_counted(tmp_path: Path, restored_environment: None):
    mine = prepare_metrics_dir(tmp_path)
    (mine / "counter_1.db").write_bytes(b"x")

    assert prepare_metrics_dir(tmp_path) == mine
    assert (mine / "counter_1.db").exists()


@pytest.mark.parametrize(("setting", "value", "check_id"), [
    ("EDGE_METRICS_ALLOWED_NETWORKS", ["10.0.0.0/8", "not-a-network"], "edge.E140"),
    ("EDGE_METRICS_TOKEN", "short", "edge.W140"),
])
def test_it_catches_misconfigured_metrics_at_start(settings: Any, setting: str, value: object, check_id: str):
    assert check_metrics_settings() == []
    setattr(settings, setting, value)

    assert [message.id for message in check_metrics_settings()] == [check_id]


def test_it_refuses_a_metrics_dir_that_is_a_file(settings: Any, tmp_path: Path):
    settings.EDGE_METRICS_DIR = tmp_path / "a-file"
    settings.EDGE_METRICS_DIR.write_text("")

    assert [message.id for message in check_metrics_settings()] == ["edge.E141"]
