#!/usr/bin/env python3
"""Writes a random COCO keypoint pair (ground truth + results), seeded.

usage: make_keypoint_pair.py OUT_DIR [--images 5000] [--seed 0] [--dets-per-gt 3]

Each image gets 0-5 people (~3 on average) with 17 keypoints; some are crowd, some
have no labelled keypoint, areas span small to large (including exactly 32^2 and
96^2). Results are noisy copies of the people (a few per person, scores in (0, 1))
plus false positives, with a bbox field. Deterministic for a seed (Python's random).
"""
import argparse
import json
import os
import random

NAMES = ["nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
         "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee",
         "right_knee", "left_ankle", "right_ankle"]
SKELETON = [[16, 14], [14, 12], [17, 15], [15, 13], [12, 13], [6, 12], [7, 13], [6, 7], [6, 8], [7, 9],
            [8, 10], [9, 11], [2, 3], [1, 2], [1, 3], [2, 4], [3, 5], [4, 6], [5, 7]]


def person(rng, width, height):
    w = rng.choice([rng.uniform(8, 40), rng.uniform(40, 120), rng.uniform(120, 400), 32.0, 96.0])
    h = w * rng.uniform(1.0, 2.5) if rng.random() < 0.8 else w
    x = rng.uniform(0, max(1.0, width - w))
    y = rng.uniform(0, max(1.0, height - h))
    kps = []
    labelled = 0
    blank = rng.random() < 0.05  # a person with no labelled keypoint
    for _ in range(17):
        if blank or rng.random() < 0.2:
            kps += [0, 0, 0]
        else:
            kps += [round(x + rng.uniform(0, w), 2), round(y + rng.uniform(0, h), 2), rng.choice([1, 2, 2])]
            labelled += 1
    area = w * h * rng.uniform(0.4, 0.9)
    if rng.random() < 0.05:  # areas exactly at the range edges
        area = rng.choice([32.0 ** 2, 96.0 ** 2])
    return {"keypoints": kps, "num_keypoints": labelled, "bbox": [round(x, 2), round(y, 2), round(w, 2),
                                                                   round(h, 2)], "area": round(area, 2)}


def detection(rng, gt, noise):
    w, h = gt["bbox"][2], gt["bbox"][3]
    s = noise * (w * h) ** 0.5
    kps = []
    for j in range(17):
        gx, gy, v = gt["keypoints"][3 * j: 3 * j + 3]
        if v == 0:
            gx, gy = gt["bbox"][0] + rng.uniform(0, w), gt["bbox"][1] + rng.uniform(0, h)
        kps += [round(gx + rng.gauss(0, s), 2), round(gy + rng.gauss(0, s), 2), round(rng.random(), 3)]
    box = [round(gt["bbox"][0] + rng.gauss(0, s), 2), round(gt["bbox"][1] + rng.gauss(0, s), 2),
           round(max(1.0, w + rng.gauss(0, s)), 2), round(max(1.0, h + rng.gauss(0, s)), 2)]
    return kps, box


def make(images, seed, dets_per_gt):
    rng = random.Random(seed)
    gt = {"info": {"description": "fancy random keypoint pair, seed %d" % seed}, "images": [], "annotations": [],
          "categories": [{"id": 1, "name": "person", "supercategory": "person", "keypoints": NAMES,
                          "skeleton": SKELETON}]}
    dt = []
    ann_id = 1
    for i in range(images):
        image_id = 1000 + 7 * i
        width, height = 640, 480
        gt["images"].append({"id": image_id, "width": width, "height": height, "file_name": "%012d.jpg" % image_id})
        for _ in range(rng.choice([0, 1, 2, 3, 3, 4, 4, 5])):
            p = person(rng, width, height)
            crowd = rng.random() < 0.03
            p.update({"id": ann_id, "image_id": image_id, "category_id": 1, "iscrowd": int(crowd)})
            ann_id += 1
            gt["annotations"].append(p)
            for _ in range(rng.randint(1, 2 * dets_per_gt - 1)):
                kps, box = detection(rng, p, rng.choice([0.01, 0.03, 0.08, 0.2]))
                dt.append({"image_id": image_id, "category_id": 1, "keypoints": kps, "bbox": box,
                           "score": round(rng.random(), 6)})
        for _ in range(rng.randint(0, 2)):  # false positives
            p = person(rng, width, height)
            kps, box = detection(rng, p, 0.05)
            dt.append({"image_id": image_id, "category_id": 1, "keypoints": kps, "bbox": box,
                       "score": round(rng.random(), 6)})
    return gt, dt


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--images", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dets-per-gt", type=int, default=3)
    args = ap.parse_args()
    gt, dt = make(args.images, args.seed, args.dets_per_gt)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "gt.json"), "w") as f:
        json.dump(gt, f)
    with open(os.path.join(args.out, "dt.json"), "w") as f:
        json.dump(dt, f)
    print("%s: %d images, %d ground truths, %d results" % (args.out, len(gt["images"]), len(gt["annotations"]),
                                                         len(dt)))


if __name__ == "__main__":
    main()
