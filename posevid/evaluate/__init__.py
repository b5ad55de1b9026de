"""Evaluation in the seed's terms: a temporal model against its per-frame twin on annotated videos.

One module per job; the metrics are pure functions on arrays (no I/O, no models), each tested on
hand-made inputs:

    ground_truth   load_ground_truth(path) -> GroundTruth: an annotation file read for scoring
    accuracy       per frame: match_frame (OKS matching), oks_score, coco_results + coco_keypoint_ap
                   (COCO AP through pycocotools), people_outcomes / people_found / people_summary
                   (reported people against ground-truth boxes, people AP); FrameEval, their input
    temporal       along tracks: track_acceleration_errors, jitter_score, id_switches
    regression     offsets read at the true person centers against a mean-pose oracle
    run            the model loop: evaluate(temporal, per_frame, annotations) -> Report runs both
                   predictors over every video; center_regression runs the per-frame network
    report         ModelReport / Report: every metric of each model, to_dict() (the JSON report),
                   table() (the printed table)
    plot           plot_nms_scores(report, png): the local-NMS score along the frames

Annotation files are COCO keypoints JSON, optionally extended PoseTrack-style (`images` carry
`video_id` and `frame_id`, `annotations` carry `track_id`). A frame is either frame t of a video,
`file_name` "videos/000001.mp4#7", or an image file (a still without `video_id` is a one-frame video;
image files sharing a `video_id` are the frames of one video, in `frame_id` order). Paths are relative
to `videos_root`, by default the annotation file's folder. Images with `"is_labeled": false`
(PoseTrack) are run through the models for context but not scored.

All coordinates are (x, y) in source pixels.
"""
