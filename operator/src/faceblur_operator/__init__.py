"""The faceblur operator: turns a FaceBlurJob into split, process and compose Jobs and reports progress."""
