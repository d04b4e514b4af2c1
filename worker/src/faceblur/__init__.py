"""faceblur: detect and anonymize faces in video, one chunk at a time."""

__version__ = "0.1.0"
