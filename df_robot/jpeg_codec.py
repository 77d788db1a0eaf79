"""JPEG for image arrays (optional, lossy): imagecodecs' numcodecs codec, bridged to Zarr v3.

Zarr v3 reaches numcodecs codecs through ``numcodecs.<id>`` codec names. imagecodecs ships the
codec; this module only registers it with numcodecs and with zarr, so a store written with
``image_codec="jpeg"`` reads back wherever df_robot is imported.
"""

from __future__ import annotations

import warnings

import numcodecs
import zarr.registry
from imagecodecs.numcodecs import Jpeg
from zarr.codecs.numcodecs._codecs import _NumcodecsArrayBytesCodec

numcodecs.register_codec(Jpeg)


class JpegCodec(_NumcodecsArrayBytesCodec, codec_name="imagecodecs_jpeg"):
    def __init__(self, **config):
        with warnings.catch_warnings():  # "not in the Zarr v3 specification": known, accepted
            warnings.simplefilter("ignore")
            super().__init__(**config)


zarr.registry.register_codec("numcodecs.imagecodecs_jpeg", JpegCodec)
