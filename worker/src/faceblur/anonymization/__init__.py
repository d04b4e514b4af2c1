"""What a frame's pixels become: faces and fixed regions anonymized (blur, mosaic or fill), and
boxes drawn for people checking quality."""
