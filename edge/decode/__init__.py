"""Decode: device profiles (one YAML file per model), decoding vendor payloads (JSON and binary
frames) into readings, and the profile checker.
"""

from edge.decode.check import Problem, check_profiles
from edge.decode.decode import decode
from edge.decode.profiles import DeviceProfile, FieldSpec, ProfileRegistry, default_profile_dir

__all__ = [
    "DeviceProfile",
    "FieldSpec",
    "Problem",
    "ProfileRegistry",
    "check_profiles",
    "decode",
    "default_profile_dir",
]
