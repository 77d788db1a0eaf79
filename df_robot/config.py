"""Hydra configs (df_robot/conf/), composed with the user's overrides; mistakes become one line.

We compose with Hydra's API rather than decorating a main, so `df-robot train ...` stays one
CLI with the other subcommands; the override grammar is Hydra's own.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from df_robot.errors import UserError

CONF_DIR = Path(__file__).parent / "conf"


def _leaves(cfg, prefix=""):
    for key, value in cfg.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            yield from _leaves(value, path + ".")
        else:
            yield path, value


def _explain(message: str, overrides: list[str]) -> str:
    """Hydra's first line, plus what the user could have written instead."""
    for group in ("task", "policy", "train"):
        if f"'{group}/" in message:
            options = sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))
            return f"{message}; {group} must be one of {options}"
    if message.startswith("Could not override"):
        key = message.split("'")[1]
        parent = key.rsplit(".", 1)[0] if "." in key else ""
        from hydra import compose as hydra_compose, initialize_config_dir

        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            base = OmegaConf.to_container(hydra_compose("config"), resolve=False)
        node = base
        for part in parent.split(".") if parent else []:
            node = node.get(part, {}) if isinstance(node, dict) else {}
        known = sorted(node) if isinstance(node, dict) else []
        return f"{key}: no such key" + (f"; {parent or 'the top level'} has {known}" if known else "") + \
            " (add a new key with +key=value)"
    return message


def compose(overrides: list[str], config_name: str = "config") -> DictConfig:
    from hydra import compose as hydra_compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            defaults = hydra_compose(config_name, overrides=[o for o in overrides if o.split("=")[0] in
                                                              ("task", "policy", "train")])
            cfg = hydra_compose(config_name, overrides=overrides)
    except (HydraException, OmegaConfBaseException) as exc:
        raise UserError(f"config: {_explain(str(exc).splitlines()[0], overrides)}") from None
    # Hydra does not check types of plain-YAML values: do it against the defaults.
    default_types = dict(_leaves(OmegaConf.to_container(defaults, resolve=False)))
    for key, value in _leaves(OmegaConf.to_container(cfg, resolve=False)):
        want = default_types.get(key)
        if want is None or value is None:
            continue
        if isinstance(want, bool) != isinstance(value, bool) or (
                isinstance(want, (int, float)) and not isinstance(value, (int, float))) or (
                isinstance(want, int) and not isinstance(want, bool) and isinstance(value, float)
                and not value.is_integer()) or (isinstance(want, str) and not isinstance(value, str)) or (
                isinstance(want, list) and not isinstance(value, list)):
            raise UserError(f"config: {key}: expected {type(want).__name__} (like {want!r}), found {value!r}")
    return cfg
