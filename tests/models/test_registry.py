import pytest

from deploykit import models
from deploykit.errors import BadInputError, UnknownModelError
from deploykit.models.registry import ModelSpec, register_model


def test_unknown_name_suggests_close_names():
    with pytest.raises(UnknownModelError, match="did you mean gaitgl"):
        models.spec("gaitgll")


def test_unknown_override_lists_valid_keys():
    with pytest.raises(BadInputError, match="valid keys are"):
        models.build("gaitgl", chanels=[1, 2, 3])


def test_none_overrides_are_dropped():
    net = models.build("gaitgl", class_num=None)
    assert net.Head1.fc_bin.shape[-1] == 74


def test_build_returns_eval_mode():
    assert not models.build("gaitgl").training


def test_duplicate_registration_is_an_error():
    spec = models.spec("gaitgl")
    with pytest.raises(ValueError, match="registered twice"):
        register_model(spec)(lambda **c: None)


def test_frames_below_minimum_is_rejected():
    spec = models.spec("gaitgl")
    with pytest.raises(BadInputError, match="frames"):
        spec.input_specs(frames=0)


def test_spec_is_frozen():
    with pytest.raises(Exception):
        models.spec("gaitgl").name = "x"
    assert isinstance(models.spec("gaitgl"), ModelSpec)
