"""Parsers for the annotation files that video datasets ship: one torch-free module per dataset, mirroring
``assemblenet.data.datasets`` (``common`` holds what they share). Every public name is re-exported here.

Every parser raises ``DataError`` naming the file and the line of the first malformed row, so a user can fix
their annotations instead of guessing. Supported formats:

- class lists: one name per line, or Charades ``c000 Holding some clothes`` lines (``common``);
- Charades ``Charades_v1_{train,test}.csv`` (actions ``c092 11.90 21.20;c147 0.00 12.60``) and PySlowFast frame
  lists (``original_vido_id video_id frame_id path labels``, space separated) (``charades``);
- video/label lists: CSV ``path,label`` (Kinetics, Moments-in-Time; a header row is optional), whitespace
  separated ``path label`` lines (MMAction style), and the official Kinetics
  ``label,youtube_id,time_start,time_end,split`` CSV (``lists``);
- the official Kinetics CSVs and their folder layouts (``kinetics``), Moments-in-Time and Multi-Moments lists
  (``moments``), Something-Something v2 JSON (``ssv2``), UCF101 and HMDB51 splits (``ucf_hmdb``);
- plain lists of file names and Toyota Smarthome clip names (``common.read_name_list``, ``smarthome``).
"""

from assemblenet.data.annotations.charades import (
    CHARADES_COLUMNS,
    CharadesAction,
    CharadesRecord,
    FrameListVideo,
    format_charades_actions,
    parse_charades_actions,
    read_charades_csv,
    read_frame_list,
    write_charades_csv,
)
from assemblenet.data.annotations.common import (
    ClassList,
    ListedVideo,
    find_class,
    is_video_list,
    read_class_list,
    read_name_list,
    write_class_list,
)
from assemblenet.data.annotations.kinetics import (
    KINETICS_LAYOUTS,
    KINETICS_TEMPLATE_FIELDS,
    KineticsRow,
    detect_kinetics_layout,
    format_kinetics_path,
    is_kinetics_csv,
    kinetics_template_uses_label,
    read_kinetics_csv,
)
from assemblenet.data.annotations.lists import (
    KINETICS_OFFICIAL_TEMPLATE,
    LabeledPath,
    read_video_list,
    video_list_classes,
    write_video_list,
)
from assemblenet.data.annotations.moments import (
    read_moments_categories,
    read_moments_list,
    read_multi_moments_list,
)
from assemblenet.data.annotations.smarthome import (
    SmarthomeClip,
    parse_smarthome_name,
)
from assemblenet.data.annotations.ssv2 import (
    read_ssv2_labels,
    read_ssv2_split,
    ssv2_class_name,
)
from assemblenet.data.annotations.ucf_hmdb import (
    HMDB51_CODES,
    HmdbVideo,
    read_hmdb51_splits,
    read_ucf101_class_index,
    read_ucf101_split,
)

__all__ = [
    "CHARADES_COLUMNS",
    "CharadesAction",
    "CharadesRecord",
    "ClassList",
    "FrameListVideo",
    "HMDB51_CODES",
    "HmdbVideo",
    "KINETICS_LAYOUTS",
    "KINETICS_OFFICIAL_TEMPLATE",
    "KINETICS_TEMPLATE_FIELDS",
    "KineticsRow",
    "LabeledPath",
    "ListedVideo",
    "SmarthomeClip",
    "detect_kinetics_layout",
    "find_class",
    "format_charades_actions",
    "format_kinetics_path",
    "is_kinetics_csv",
    "is_video_list",
    "kinetics_template_uses_label",
    "parse_charades_actions",
    "parse_smarthome_name",
    "read_charades_csv",
    "read_class_list",
    "read_frame_list",
    "read_hmdb51_splits",
    "read_kinetics_csv",
    "read_moments_categories",
    "read_moments_list",
    "read_multi_moments_list",
    "read_name_list",
    "read_ssv2_labels",
    "read_ssv2_split",
    "read_ucf101_class_index",
    "read_ucf101_split",
    "read_video_list",
    "ssv2_class_name",
    "video_list_classes",
    "write_charades_csv",
    "write_class_list",
    "write_video_list",
]
