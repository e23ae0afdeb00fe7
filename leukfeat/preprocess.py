"""leukfeat.preprocess (being written)."""
