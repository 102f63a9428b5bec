"""Target options: every target refuses an option it does not take in the same words
(`targets.check_option_names`), naming the options it does take; a bad value names the option,
its allowed values and the value given (`targets.check_choice`)."""

from __future__ import annotations

import importlib.util

import pytest

from loopweave.errors import TargetError
from loopweave.pipeline import get_target
from loopweave.targets import check_choice, check_option_names

HAVE_TRITON = all(importlib.util.find_spec(p) for p in ("triton", "torch"))


@pytest.mark.parametrize(("target", "expected"), [
    ("cpu", "simd"),
    ("cuda", "arch, emulate, block_m"),
    pytest.param("triton", "block, num_warps", marks=pytest.mark.skipif(
        not HAVE_TRITON, reason="triton or torch is not installed")),
    ("aarch64", "runner"),
    ("cortex-m4", "runner"),
])
def test_every_target_refuses_an_unknown_option_in_one_wording(target, expected):
    with pytest.raises(TargetError) as info:
        get_target(target, options={"speed": 3})
    message = str(info.value)
    assert message.startswith(f"target '{target}' has no option 'speed'; its options are ")
    assert expected in message


def test_several_unknown_options_and_a_hint_for_a_misspelling():
    with pytest.raises(TargetError, match=r"^target 'cuda' has no options 'blok_m', 'speed'; "
                                          r"its options are arch, .*\(did you mean 'blok_m' -> "
                                          r"'block_m'\?\)$"):
        get_target("cuda", options={"speed": 1, "blok_m": 64})


def test_no_options_at_all():
    with pytest.raises(TargetError, match="its options are none"):
        check_option_names("bare", {"x": 1}, ())
    check_option_names("bare", {}, ())


@pytest.mark.parametrize(("target", "option", "value", "words"), [
    ("cpu", "simd", 1, "option simd must be one of True, False, not 1"),
    ("cuda", "arch", "sm_1", "option arch must be one of sm_75, "),
    ("cuda", "emulate", "yes", "option emulate must be one of True, False, None, not 'yes'"),
])
def test_a_bad_value_names_the_option_and_its_values(target, option, value, words):
    with pytest.raises(TargetError, match=f"^target '{target}': ") as info:
        get_target(target, options={option: value})
    assert words in str(info.value)


def test_check_choice_tells_booleans_from_numbers():
    check_choice("t", "flag", True, (True, False))
    check_choice("t", "n", 2, (1, 2))
    with pytest.raises(TargetError):
        check_choice("t", "flag", 1, (True, False))
    with pytest.raises(TargetError):
        check_choice("t", "n", True, (1, 2))
