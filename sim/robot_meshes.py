"""Coarser copies of the robot's visual meshes, for the twin's small cameras.

Menagerie's FR3 and Franka Hand are drawn with about 240,000 triangles, detail a 96-pixel
camera cannot show (a pixel spans about 7 mm on the table) but which software GL (llvmpipe,
the renderer on machines without a GPU) pays for in every frame: drawing them took most of
the time to record demonstrations. Vertex clustering on a few-millimetre grid keeps the
shape to within the grid and drops most triangles; the images barely change
(bench/render_cost.py measures both). Only meshes that no geom collides with are touched,
and a body that took its mass from its meshes keeps the mass Menagerie's meshes gave it,
so the physics is Menagerie's to the last bit.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import mujoco
import numpy as np

MIN_FACES = 1000  # smaller meshes cost little and could fall apart on a coarse grid


def use_coarse_visual_meshes(spec: mujoco.MjSpec, assets: Path, grid: float) -> None:
    """Replace the robot's visual-only meshes in `spec` by their clustered copies."""
    meshes, inertials = _coarse_robot(str(assets), float(grid))
    for name, (mass, ipos, iquat, inertia) in inertials.items():
        body = spec.body(name)
        body.explicitinertial = True
        body.mass, body.ipos, body.iquat, body.inertia = mass, ipos, iquat, inertia
    for name, (vert, face) in meshes.items():
        mesh = spec.mesh(name)
        mesh.file = ""
        mesh.scale = [1.0, 1.0, 1.0]
        mesh.uservert = vert.ravel().tolist()
        mesh.userface = face.ravel().tolist()
        mesh.smoothnormal = True  # the clustered facets would otherwise show as flat patches


@lru_cache(maxsize=4)
def _coarse_robot(assets: str, grid: float) -> tuple[dict, dict]:
    """Each large visual-only mesh of the robot model, clustered, and the inertials of the
    bodies that take theirs from their meshes; once per process."""
    spec = mujoco.MjSpec.from_file(str(Path(assets) / "fr3.xml"))
    spec.meshdir = str(Path(assets) / "meshes")
    model = spec.compile()
    collides = np.zeros(model.nmesh, bool)
    for g in np.flatnonzero(model.geom_type == mujoco.mjtGeom.mjGEOM_MESH):
        collides[model.geom_dataid[g]] |= bool(model.geom_contype[g] or model.geom_conaffinity[g])
    meshes = {}
    for m in range(model.nmesh):
        if collides[m] or model.mesh_facenum[m] < MIN_FACES:
            continue
        name = mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_MESH, m)
        meshes[name] = _cluster(_asset_frame_vertices(model, m, spec.mesh(name).scale), _faces(model, m), grid)
    inertials = {}
    for b in spec.bodies:
        if b.name != "world" and not b.explicitinertial:
            body = model.body(b.name)
            inertials[b.name] = (body.mass[0], body.ipos.copy(), body.iquat.copy(), body.inertia.copy())
    return meshes, inertials


def _asset_frame_vertices(model: mujoco.MjModel, m: int, scale) -> np.ndarray:
    """The mesh's vertices as its file has them: the compiler moved them to the mesh's inertial
    frame (mesh_pos, mesh_quat) and applied its scale."""
    start, n = model.mesh_vertadr[m], model.mesh_vertnum[m]
    rot = np.zeros(9)
    mujoco.mju_quat2Mat(rot, model.mesh_quat[m])
    vert = model.mesh_vert[start:start + n].astype(np.float64) @ rot.reshape(3, 3).T + model.mesh_pos[m]
    return vert / np.asarray(scale, float)


def _faces(model: mujoco.MjModel, m: int) -> np.ndarray:
    start = model.mesh_faceadr[m]
    return model.mesh_face[start:start + model.mesh_facenum[m]]


def _cluster(vert: np.ndarray, face: np.ndarray, grid: float) -> tuple[np.ndarray, np.ndarray]:
    """Merge the vertices in each grid cell into their centroid; drop the triangles that collapse."""
    cell = np.floor((vert - vert.min(axis=0)) / grid).astype(np.int64)
    dims = cell.max(axis=0) + 1
    _, group, count = np.unique((cell[:, 0] * dims[1] + cell[:, 1]) * dims[2] + cell[:, 2],
                                return_inverse=True, return_counts=True)
    group = group.ravel()
    centroid = np.stack([np.bincount(group, vert[:, k]) for k in range(3)], axis=1) / count[:, None]
    face = group[face]
    face = face[(face[:, 0] != face[:, 1]) & (face[:, 1] != face[:, 2]) & (face[:, 0] != face[:, 2])]
    _, first = np.unique(np.sort(face, axis=1), axis=0, return_index=True)
    face = face[np.sort(first)]  # a triangle once, whichever way round it came
    used, face = np.unique(face, return_inverse=True)
    return centroid[used].astype(np.float32), face.reshape(-1, 3).astype(np.int32)
