"""Video files and frames: probing inputs, decoding and encoding chunks (colour kept exactly),
remuxing chunks into one video, rotation, and making an input URL readable."""
