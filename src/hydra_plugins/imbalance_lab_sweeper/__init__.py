"""imbalance-lab's Hydra sweeper (a Hydra plugin: Hydra instantiates plugins only from `hydra_plugins`)."""
