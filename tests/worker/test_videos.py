"""The test videos are what they claim: frame counts, timestamps, rotation, keyframes, faces."""

from __future__ import annotations

import av
from faceblur_testenv.videos import Scene, VideoLibrary, frame_pts_ms


def test_cfr_video_has_its_frames_audio_and_faces(videos: VideoLibrary) -> None:
    video = videos.get()
    assert video.frame_count == video.spec.frames == 50
    steps = {b - a for a, b in zip(video.pts, video.pts[1:], strict=False)}
    assert len(steps) == 1  # constant frame rate
    assert all(len(faces) == 1 for faces in video.faces)
    with av.open(str(video.path)) as container:
        assert len(container.streams.audio) == 1
        assert container.streams.video[0].codec_context.width == 320


def test_vfr_video_has_varying_frame_durations(videos: VideoLibrary) -> None:
    video = videos.get(vfr=True)
    assert list(video.pts) == frame_pts_ms(video.frame_count)
    assert len({b - a for a, b in zip(video.pts, video.pts[1:], strict=False)}) > 2


def test_rotated_video_is_tagged_and_coded_sideways(videos: VideoLibrary) -> None:
    video = videos.get(rotation=90)
    assert (video.width, video.height) == (240, 320)
    with av.open(str(video.path)) as container:
        frame = next(container.decode(video=0))
        assert frame.rotation % 360 == 90
    face = video.faces[0][0]
    assert face.x2 <= 240
    assert face.y2 <= 320
    assert face.height < face.width  # the face lies on its side in the coded frame


def test_gop_sets_keyframes_and_group_scene_has_six_faces(videos: VideoLibrary) -> None:
    video = videos.get(scene=Scene.GROUP, gop=10)
    assert video.keyframes == (0, 10, 20, 30, 40)
    assert all(len(faces) == 6 for faces in video.faces)


def test_face_frames_hide_faces_elsewhere(videos: VideoLibrary) -> None:
    video = videos.get(frames=20, face_frames=frozenset({9}))
    assert [n for n, faces in enumerate(video.faces) if faces] == [9]
