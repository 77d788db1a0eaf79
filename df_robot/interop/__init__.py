"""Other stacks' datasets in and out: robomimic (HDF5), Diffusion Policy (zarr v2 replay
buffers), LeRobot (parquet + mp4). Each importer validates its input, prints and saves the
key mapping, and writes all or nothing."""
