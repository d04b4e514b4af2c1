"""Options of the per-chunk work, as the worker's modules import them.

They are defined once, in the contract with the operator (`faceblur_contract`): this module only
gives the worker one short import path for them.
"""

from __future__ import annotations

from faceblur_contract.enums import DetectorName, ExecutionProvider, MaskShape, ReplaceWith, X264Preset
from faceblur_contract.options import DetectorSpec, ProcessOptions

__all__ = [
    "DetectorName",
    "DetectorSpec",
    "ExecutionProvider",
    "MaskShape",
    "ProcessOptions",
    "ReplaceWith",
    "X264Preset",
]
