"""Platform profiles: the six built-ins load; bad files fail with one line naming the file and field path."""

from __future__ import annotations

from pathlib import Path

import pytest

from kaic.errors import ConfigError
from kaic.profiles import BUILTIN, BUILTIN_DIR, Profile, load_profile

pytestmark = pytest.mark.unit

MINIMAL = "name: mine\nplatform: onprem\n"


def write(tmp_path: Path, text: str, name: str = "mine.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def one_line_error(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_profile(str(path))
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message
    return message


@pytest.mark.parametrize("name", BUILTIN)
def test_each_builtin_loads(name: str) -> None:
    profile = load_profile(name)
    assert isinstance(profile, Profile)
    assert profile.name == name
    assert (BUILTIN_DIR / f"{name}.yaml").is_file()
    for t in profile.thresholds:  # validated against the catalog when loaded
        assert t.metric


def test_builtins_are_the_files_shipped() -> None:
    assert sorted(p.stem for p in BUILTIN_DIR.glob("*.yaml")) == sorted(BUILTIN)


def test_local_is_the_only_local_platform() -> None:
    assert [n for n in BUILTIN if load_profile(n).is_local] == ["local"]


def test_a_users_own_profile_file_works(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "training: {world_size: 4}\n"
                 "thresholds:\n  - {metric: holdout_accuracy, op: '>=', value: 0.8}\n")
    profile = load_profile(str(path))
    assert (profile.name, profile.platform, profile.training.world_size) == ("mine", "onprem", 4)
    assert profile.thresholds[0].holds(0.85)
    assert not profile.thresholds[0].holds(0.75)
    assert profile.kubernetes.service_account == "kaic-steps"  # defaults fill the rest


def test_malformed_yaml(tmp_path: Path) -> None:
    message = one_line_error(write(tmp_path, "name: [unclosed\nplatform: x\n"))
    assert "invalid YAML: line 2" in message


def test_not_a_mapping(tmp_path: Path) -> None:
    assert "expected a mapping, got list" in one_line_error(write(tmp_path, "- a\n- b\n"))


def test_unknown_field_names_its_path(tmp_path: Path) -> None:
    message = one_line_error(write(tmp_path, MINIMAL + "training: {world_size: 2, wrold_size: 3}\n"))
    assert "training.wrold_size" in message
    assert "Extra inputs are not permitted" in message


def test_bad_op_names_its_path(tmp_path: Path) -> None:
    bad = MINIMAL + "thresholds:\n  - {metric: holdout_accuracy, op: '=>', value: 1}\n"
    message = one_line_error(write(tmp_path, bad))
    assert "thresholds[0].op" in message


def test_unknown_metric_names_its_path(tmp_path: Path) -> None:
    message = one_line_error(write(
        tmp_path, MINIMAL + "thresholds:\n  - {metric: holdout_accuracy, op: '>=', value: 0.9}\n"
        "  - {metric: accuracy_holdout, op: '>=', value: 0.9}\n"))
    assert "thresholds[1].metric" in message
    assert "unknown metric 'accuracy_holdout'" in message


def test_wrong_type_and_missing_required_field(tmp_path: Path) -> None:
    assert "training.world_size" in one_line_error(write(tmp_path, MINIMAL + "training: {world_size: 0}\n"))
    assert "platform" in one_line_error(write(tmp_path, "name: mine\n", "noplatform.yaml"))


def test_unknown_name_or_missing_file() -> None:
    with pytest.raises(ConfigError, match="no such built-in profile"):
        load_profile("does-not-exist")
