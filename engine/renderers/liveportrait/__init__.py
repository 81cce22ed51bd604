"""LivePortrait networks (F, M, W, G, stitching/retargeting) and their checkpoint loader.

Usage::

    nets = load_networks("~/models/liveportrait", device="cuda")
    f_s = nets.appearance(src)                      # (B, 32, 16, 64, 64)
    m = nets.motion(src)                            # kp, exp, pitch/yaw/roll logits, t, scale
    x_s = keypoints_from_motion(m)                  # (B, 21, 3)
    out = nets.warping(f_s, kp_driving=x_d, kp_source=x_s)["out"]
    frame = nets.spade(out)                         # (B, 3, 512, 512) in [0, 1]
"""

from .appearance import AppearanceConfig, AppearanceFeatureExtractor
from .keypoints import keypoints_from_motion, pose_to_degrees, rotation_matrix, transform_keypoints
from .loader import (
    NETWORKS,
    LivePortraitNetworks,
    WeightsError,
    check_state_dict,
    find_checkpoint,
    load_network,
    load_networks,
    network_from_state_dict,
)
from .motion_extractor import MotionConfig, MotionExtractor
from .spade import SPADEConfig, SPADEGenerator, fold_spectral_norm
from .stitching import Retargeting, RetargetingMLP
from .warping import DenseMotionConfig, WarpingConfig, WarpingNetwork

__all__ = [
    "NETWORKS",
    "AppearanceConfig",
    "AppearanceFeatureExtractor",
    "DenseMotionConfig",
    "LivePortraitNetworks",
    "MotionConfig",
    "MotionExtractor",
    "Retargeting",
    "RetargetingMLP",
    "SPADEConfig",
    "SPADEGenerator",
    "WarpingConfig",
    "WarpingNetwork",
    "WeightsError",
    "check_state_dict",
    "find_checkpoint",
    "fold_spectral_norm",
    "keypoints_from_motion",
    "load_network",
    "load_networks",
    "network_from_state_dict",
    "pose_to_degrees",
    "rotation_matrix",
    "transform_keypoints",
]
