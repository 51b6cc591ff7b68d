"""Pose models (FastPose, HRNet, PRTR); importing this package registers them."""
