"""Notebook 08 (document 004): evolving sets of latent vectors for diverse augmentation of HuSHeM."""
