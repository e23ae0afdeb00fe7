"""leukfeat.segment (being written)."""
