"""Notebook 06 (document 002): an autoencoder trained by mutation only."""
