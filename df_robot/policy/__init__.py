"""The policy: noise schedule, image autoencoder, the diffusion-forcing model and its sampler.

Configuration (Hydra YAML in df_robot/conf/policy/) is kept apart from the model code, as
LeRobot splits a policy into its configuration and its model.
"""
