"""leukfeat.datasets (being written)."""
