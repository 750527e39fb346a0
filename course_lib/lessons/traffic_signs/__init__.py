"""Notebooks 05a-05e (document 001): traffic signs, per-class generators and generative augmentation."""
