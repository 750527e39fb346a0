"""Notebook 03 (document 000, sections III-C and V-C): a GAN on MNIST and its discriminator as a judge."""
