"""leukfeat.io (being written)."""
