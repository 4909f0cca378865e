"""Which arithmetic class an operand pair needs: lossless joins across integer and float classes."""

import pytest

from hwdse.hardware._base import join_classes, operand_class


@pytest.mark.parametrize("classes, expected", [
    (("int8", "fp8"), "bf16"),   # E4M3 holds integers exactly only up to 16: int8 needs BF16
    (("int4", "fp8"), "fp8"),    # -8..7 fits both FP8 variants' three significant bits
    (("int8", "fp16"), "fp16"),
    (("int8", "int4"), "int8"),
    (("fp8", "fp4"), "fp8"),
    (("int2", "fp4"), "fp4"),
    (("bf16", "fp16"), "bf16"),
])
def test_join(classes, expected):
    assert join_classes(classes) == expected


def test_weight_only_int8_with_fp8_activations_is_not_fp8():
    assert operand_class(("int8", "fp8-e4m3")) == "bf16"
    assert operand_class(("int4", "fp8-e4m3")) == "fp8"
