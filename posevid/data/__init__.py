"""Training and evaluation data: synthetic video clips with exact keypoints, readers, DEKR targets.

Layout (the pipeline order):
    body      -> a parametric human mesh (anny) with its rig, skinning and COCO keypoint regressor
    motion    -> joint rotations over time: CMU BVH motion capture and procedural motion
    render    -> pinhole camera and a numpy z-buffer rasteriser (depth, person-id mask, shading)
    appearance-> clothing colours/textures, real-photo backgrounds, camera degradations
    garments  -> skirts, dresses and long coats hanging over the legs; long hair down the back
    props     -> upright non-person things standing in the scene (poles, signs, cones, bins)
    synth     -> clip composer, COCO/PoseTrack-style annotation file, parallel generation
    readers   -> COCO keypoints, PoseTrack-style video JSON, clip sampler with augmentation
    targets   -> DEKR heatmaps, center map, offsets and weights (pure array functions)
    splits    -> the fixed front/side evaluation splits, built on first use and checksummed
    show      -> contact sheet of ground truth over frames
    cli       -> `posevid data synth|show` (a Typer sub-app), bench -> generator speed

Heavy generator dependencies (anny) are optional: `pip install posevid[synth]`.
"""
