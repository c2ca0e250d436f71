"""Tiny trees in the exact official layouts of UCF101, HMDB51, Kinetics-400, Moments-in-Time (+ Multi-Moments) and
Something-Something v2, quirks included, for the data and CLI tests. Each training list names one video that is not
on disk and one that is not a video. The videos are 2-frame 16x16 clips generated here."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tests.data.conftest import encode_video

_CODECS = {".avi": "mpeg4", ".mp4": "libx264", ".webm": "libvpx-vp9"}


def make_tiny_videos(folder: Path) -> dict[str, bytes]:
    """2-frame 16x16 videos, one per container the official releases use (AVI/MPEG-4, MP4/H.264, WebM/VP9)."""
    frames = np.zeros((2, 16, 16, 3), dtype=np.uint8)
    frames[1] = 128
    return {ext: encode_video(folder / f"v{ext}", frames, codec=codec).read_bytes() for ext, codec in _CODECS.items()}


def put(videos: dict[str, bytes], path: Path, *, broken: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"this is not a video" if broken else videos[path.suffix])


def write(path: Path, text: str, *, crlf: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.replace("\n", "\r\n" if crlf else "\n").encode("utf-8"))
    return path


def make_ucf101(parent: Path, tiny_videos: dict[str, bytes]) -> Path:
    """classInd.txt is 1-based with CRLF line ends, as shipped; the HandstandPushups folder holds
    v_HandStandPushups_* files; trainlist02 spells the file v_HandstandPushups_* (lists fixed with sed)."""
    root = parent / "ucf101"
    lists = root / "ucfTrainTestlist"
    write(lists / "classInd.txt", "1 ApplyEyeMakeup\n2 HandstandPushups\n3 YoYo\n", crlf=True)
    write(lists / "trainlist01.txt",
          "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1\n"
          "HandstandPushups/v_HandStandPushups_g08_c01.avi 2\n"
          "YoYo/v_YoYo_g08_c01.avi 3\n"
          "YoYo/v_YoYo_g09_c01.avi 3\n"          # not on disk
          "ApplyEyeMakeup/v_ApplyEyeMakeup_g09_c01.avi 1\n", crlf=True)  # unreadable
    write(lists / "testlist01.txt", "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi\n"
                                    "HandstandPushups/v_HandStandPushups_g01_c01.avi\n", crlf=True)
    write(lists / "trainlist02.txt", "HandstandPushups/v_HandstandPushups_g01_c01.avi 2\n"
                                     "YoYo/v_YoYo_g08_c01.avi 3\n", crlf=True)
    write(lists / "testlist02.txt", "YoYo/v_YoYo_g09_c01.avi\n", crlf=True)
    videos = root / "UCF-101"
    for rel in ("ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi", "HandstandPushups/v_HandStandPushups_g08_c01.avi",
                "YoYo/v_YoYo_g08_c01.avi", "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi",
                "HandstandPushups/v_HandStandPushups_g01_c01.avi"):
        put(tiny_videos, videos / rel)
    put(tiny_videos, videos / "ApplyEyeMakeup/v_ApplyEyeMakeup_g09_c01.avi", broken=True)
    return root



HMDB_SPLIT1 = {
    "brush_hair": ["April_09_brush_hair_u_nm_np1_ba_goo_0.avi 1 ", "April_09_brush_hair_u_nm_np1_ba_goo_1.avi 2 ",
                   "Aussie_Brush_Hair_brush_hair_h_nm_np1_le_med_0.avi 0 ",
                   "atempting_to_brush_my_hair_brush_hair_u_nm_np2_le_goo_0.avi 1 "],  # missing
    "sword_exercise": ["#20_Rhythm_sword_exercise_f_nm_np1_fr_goo_0.avi 1 ",
                       "Blade_Of_Fury_-_Scene_1_sword_exercise_f_cm_np1_ri_med_3.avi 2 ",
                       "Brave_Heart_(1995)_sword_exercise_f_nm_np1_le_bad_0.avi 1 "],  # unreadable
}


def make_hmdb51(parent: Path, tiny_videos: dict[str, bytes]) -> Path:
    """Class names with underscores, file names with '#', '(' and '-', trailing spaces after the codes."""
    root = parent / "hmdb51"
    splits = root / "testTrainMulti_7030_splits"
    for name, lines in HMDB_SPLIT1.items():
        write(splits / f"{name}_test_split1.txt", "\n".join(lines) + "\n")
        flipped = [line.replace(" 1 ", " x ").replace(" 2 ", " 1 ").replace(" x ", " 2 ") for line in lines]
        write(splits / f"{name}_test_split2.txt", "\n".join(flipped) + "\n")
    for name, lines in HMDB_SPLIT1.items():
        for line in lines:
            video = line.split()[0]
            if "atempting" in video:
                continue
            put(tiny_videos, root / name / video, broken="Brave_Heart" in video)
    return root



def make_kinetics400(parent: Path, tiny_videos: dict[str, bytes]) -> Path:
    """Kinetics-400 CSVs (with is_cc; the test CSV without label), labels with spaces and brackets, videos in the
    crawler layout train/<label>/<id>_<start:06d>_<end:06d>.mp4 and the flat CVDF layout test/<id>_...mp4."""
    root = parent / "kinetics400"
    write(root / "annotations/train.csv",
          "label,youtube_id,time_start,time_end,split,is_cc\n"
          '"passing American football (in game)",-5MSmC2WxEI,14,24,train,0\n'
          "abseiling,0347ZoDXyP0,36,46,train,0\n"
          "zumba,--Q8bHyD7h8,0,10,train,0\n"
          "zumba,_0ZXa9jcVa4,109,119,train,0\n"     # missing
          "abseiling,0lJAAqO6SS4,5,15,train,0\n")   # unreadable
    write(root / "annotations/validate.csv",
          "label,youtube_id,time_start,time_end,split,is_cc\nzumba,zzz_val_01,3.0,13.0,val,0\n")
    write(root / "annotations/test.csv", "youtube_id,time_start,time_end,split\nyyy_test_01,0,10,test\n")
    for label, clip in (("passing American football (in game)", "-5MSmC2WxEI_000014_000024"),
                        ("abseiling", "0347ZoDXyP0_000036_000046"), ("zumba", "--Q8bHyD7h8_000000_000010")):
        put(tiny_videos, root / "train" / label / f"{clip}.mp4")
    put(tiny_videos, root / "train/abseiling/0lJAAqO6SS4_000005_000015.mp4", broken=True)
    put(tiny_videos, root / "val/zumba/zzz_val_01_000003_000013.mp4")
    put(tiny_videos, root / "test/yyy_test_01_000000_000010.mp4")
    return root



def make_moments_in_time(parent: Path, tiny_videos: dict[str, bytes]) -> Path:
    """name,index categories (listed out of index order), no-header lists with vote columns, '+' in class names."""
    root = parent / "Moments_in_Time_Raw"
    write(root / "moments_categories.txt", "clapping,2\nadult+female+singing,0\nbathing,1\n")
    write(root / "trainingSet.csv",
          "adult+female+singing/0a8b6d8d6b8c6f_1.mp4,adult+female+singing,3,0\n"
          "bathing/yt-5of6ffo6-Bw_205.mp4,bathing,3,1\n"
          "clapping/getty-clapping-video-id635808620_4.mp4,clapping,2,0\n"
          "clapping/flickr-1-2-3_7.mp4,clapping,3,0\n"     # missing
          "bathing/yt-broken_3.mp4,bathing,4,0\n")        # unreadable
    write(root / "validationSet.csv", "bathing/yt-val_1.mp4,bathing,3,0\n")
    for rel in ("adult+female+singing/0a8b6d8d6b8c6f_1.mp4", "bathing/yt-5of6ffo6-Bw_205.mp4",
                "clapping/getty-clapping-video-id635808620_4.mp4"):
        put(tiny_videos, root / "training" / rel)
    put(tiny_videos, root / "training/bathing/yt-broken_3.mp4", broken=True)
    put(tiny_videos, root / "validation/bathing/yt-val_1.mp4")
    # Multi-Moments: the same category file, lists of 0-based indices, videos under videos/.
    write(root / "trainingSet.txt", "bathing/yt-5of6ffo6-Bw_205.mp4,1,2\nclapping/x_1.mp4,2\n")
    write(root / "validationSet.txt", "bathing/yt-5of6ffo6-Bw_205.mp4,0\n")
    return root



def make_ssv2(parent: Path, tiny_videos: dict[str, bytes]) -> Path:
    """String ids in the labels JSON (not in id order), bracketed templates, a test JSON of ids, VP9 WebM videos."""
    root = parent / "ssv2"
    labels = {"Putting something on a surface": "2", "Approaching something with your camera": "0",
              "Pushing something from left to right": "1"}
    train = [
        {"id": "78687", "label": "pushing a pen from left to right",
         "template": "Pushing [something] from left to right", "placeholders": ["a pen"]},
        {"id": "42326", "label": "putting a cup on a table", "template": "Putting [something] on a surface",
         "placeholders": ["a cup"]},
        {"id": "100", "label": "approaching a door with your camera",
         "template": "Approaching [something] with your camera", "placeholders": ["a door"]},
        {"id": "101", "label": "missing", "template": "Putting [something] on a surface", "placeholders": ["x"]},
        {"id": "102", "label": "broken", "template": "Putting [something] on a surface", "placeholders": ["x"]},
    ]
    write(root / "something-something-v2-labels.json", json.dumps(labels, indent=1))
    write(root / "something-something-v2-train.json", json.dumps(train, indent=1))
    write(root / "something-something-v2-validation.json", json.dumps(train[:1]))
    write(root / "something-something-v2-test.json", json.dumps([{"id": "5"}, {"id": "100"}]))
    videos = root / "20bn-something-something-v2"
    for video_id in ("78687", "42326", "100"):
        put(tiny_videos, videos / f"{video_id}.webm")
    put(tiny_videos, videos / "102.webm", broken=True)
    return root
