"""GPU machine only: imageio-ffmpeg is not installed there, so training reads its mp4s through OpenCV."""
import cv2


def read_frames(path, pix_fmt="bgr24"):
    assert pix_fmt == "bgr24"
    cap = cv2.VideoCapture(str(path))
    w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    yield {"size": (w, h)}
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        yield frame.tobytes()
    cap.release()
