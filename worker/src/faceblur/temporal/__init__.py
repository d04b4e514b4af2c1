"""Decisions across frames: which detections are faces (hysteresis), how a face's boxes link
(tracking), which boxes cover a frame (smoothing), and which frames fail-secure hides whole."""
