"""Importing robomimic (the optional extra `df-robot[robomimic]`) beside the CPU torch.

robomimic 0.3.0 imports torchvision; the torchvision wheel PyPI has for our torch (0.28) is
built for CUDA, and its compiled ops do not load beside the CPU build of torch, so
`import torchvision` fails with "operator torchvision::nms does not exist": its Python part
registers fake (meta) kernels for two ops, `nms` and `qnms`, that the missing library would
have declared. Declaring those two schemas first lets torchvision (and robomimic, which
needs none of those ops) import. This module is the only place that knows about it.
"""

from __future__ import annotations

from df_robot.errors import UserError

_declared = None


def _declare_torchvision_ops() -> None:
    global _declared
    import torch

    if _declared is not None:
        return
    try:
        torch.ops.torchvision.nms  # noqa: B018  (present when torchvision's own ops loaded)
        _declared = False
        return
    except (AttributeError, RuntimeError):
        pass
    lib = torch.library.Library("torchvision", "DEF")
    lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _declared = lib  # the library object must stay alive for the schemas to stay declared


def robomimic():
    """Import robomimic's pieces we use, or say in one line how to install them."""
    import os
    import warnings

    _declare_torchvision_ops()
    os.environ.setdefault("ROBOMIMIC_SUPPRESS_MACRO_WARNING", "1")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import robomimic.utils.obs_utils as obs_utils
            from robomimic.algo import algo_factory
            from robomimic.config import config_factory
    except ImportError as exc:
        raise UserError(f"policy=bc_rnn needs robomimic ({exc}); install the extra: "
                        "pip install -e '.[robomimic]' (see the README)") from None
    return obs_utils, algo_factory, config_factory
